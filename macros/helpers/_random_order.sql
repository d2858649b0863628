{#- A seeded pseudo-random sort key for a row key: the same order on every warehouse (md5). -#}
{% macro _random_order(key_sql, seed) -%}
  {{ return(adapter.dispatch('_random_order', 'campaign_orchestration')(key_sql, seed)) }}
{%- endmacro %}

{% macro default___random_order(key_sql, seed) -%}
{%- set text = campaign_orchestration._sql_type('text') -%}
md5(cast({{ seed }} as {{ text }}) || ':' || cast({{ key_sql }} as {{ text }}))
{%- endmacro %}
