{#- A SQL fragment written by `campaign compile`: a string, or a mapping adapter type -> string
    when the warehouses need different SQL (sqlglot generated each). -#}
{% macro _sql(fragment) -%}
  {%- if fragment is mapping -%}
    {%- if target.type not in fragment -%}
      {{ exceptions.raise_compiler_error(
          "campaign_orchestration: this campaign needs SQL that differs between warehouses and has none for adapter '"
          ~ target.type ~ "' (it has: " ~ (fragment.keys() | list | join(', ')) ~ ")") }}
    {%- endif -%}
    {{- return(fragment[target.type]) -}}
  {%- endif -%}
  {{- return(fragment) -}}
{%- endmacro %}
