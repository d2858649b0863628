{#- The input, persisted under the audience's name (the model's alias) for later campaigns. -#}
{% macro save_audience(input, columns) -%}
  {{ return(adapter.dispatch('save_audience', 'campaign_orchestration')(input=input, columns=columns)) }}
{%- endmacro %}

{% macro default__save_audience(input, columns) -%}
select {{ campaign_orchestration._columns('wt', columns) }}
from {{ input }} as wt
{%- endmacro %}
