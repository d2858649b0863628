{#- A seeded pseudo-random sort key for a row key: the same order on every warehouse (md5). -#}
{% macro _random_order(key_sql, seed) -%}
  {{ return(adapter.dispatch('_random_order', 'campaign_orchestration')(key_sql, seed)) }}
{%- endmacro %}

{% macro default___random_order(key_sql, seed) -%}
md5(cast({{ seed }} as varchar) || ':' || cast({{ key_sql }} as varchar))
{%- endmacro %}
