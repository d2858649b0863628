{#- The time the occurrence being built runs at, as a naive UTC timestamp: the dbt variable
    `campaign_now` ('2026-03-02 07:00:00', which `campaign` passes: the slot's time for a scheduled
    occurrence, the command's --now otherwise), or the warehouse's clock, in UTC, for a plain
    `dbt build` that does not give it. -#}
{% macro _campaign_now() -%}
  {%- set given = var('campaign_now', none) -%}
  {%- if given is not none -%}
cast('{{ given | replace("'", "''") }}' as timestamp)
  {%- else -%}
{{ campaign_orchestration._warehouse_now() }}
  {%- endif -%}
{%- endmacro %}
