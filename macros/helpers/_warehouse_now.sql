{#- The warehouse's clock now, in UTC, as a naive timestamp (SQL). -#}
{% macro _warehouse_now() -%}
  {{ return(adapter.dispatch('_warehouse_now', 'campaign_orchestration')()) }}
{%- endmacro %}

{% macro default___warehouse_now() -%}
timezone('UTC', current_timestamp)
{%- endmacro %}

{#- the session's local time, in its time zone, moved to UTC -#}
{% macro spark___warehouse_now() -%}
convert_timezone(current_timezone(), 'UTC', localtimestamp())
{%- endmacro %}
