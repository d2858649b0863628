{#- The form of an address two messages share when they go to the same place. -#}
{% macro _address_key(channel, sql) -%}
  {{- "lower(trim(" ~ sql ~ "))" if channel == 'email' else "trim(" ~ sql ~ ")" -}}
{%- endmacro %}
