{#- One branch of a fork: the input, unchanged. -#}
{% macro fork(input) -%}
  {{ return(adapter.dispatch('fork', 'campaign_orchestration')(input=input)) }}
{%- endmacro %}

{% macro default__fork(input) -%}
select * from {{ input }}
{%- endmacro %}
