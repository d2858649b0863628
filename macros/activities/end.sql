{#- The end of a branch: the input, so that lineage shows where the branch stops. -#}
{% macro end(input) -%}
  {{ return(adapter.dispatch('end', 'campaign_orchestration')(input=input)) }}
{%- endmacro %}

{% macro default__end(input) -%}
select * from {{ input }}
{%- endmacro %}
