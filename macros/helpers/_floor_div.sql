{#- floor(numerator / denominator) for non-negative integers, exactly. -#}
{% macro _floor_div(numerator, denominator) -%}
  {{ return(adapter.dispatch('_floor_div', 'campaign_orchestration')(numerator, denominator)) }}
{%- endmacro %}

{% macro default___floor_div(numerator, denominator) -%}
floor(({{ numerator }}) / ({{ denominator }}))
{%- endmacro %}

{% macro postgres___floor_div(numerator, denominator) -%}
(({{ numerator }}) / ({{ denominator }}))
{%- endmacro %}

{% macro duckdb___floor_div(numerator, denominator) -%}
(({{ numerator }}) // ({{ denominator }}))
{%- endmacro %}

{% macro spark___floor_div(numerator, denominator) -%}
(({{ numerator }}) div ({{ denominator }}))
{%- endmacro %}
