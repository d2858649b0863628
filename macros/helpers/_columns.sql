{#- `alias."a", alias."b"`: the listed columns of one relation. -#}
{% macro _columns(alias, columns) -%}
  {%- for column in columns -%}
    {{ alias }}.{{ adapter.quote(column) }}{{ ", " if not loop.last }}
  {%- endfor -%}
{%- endmacro %}
