{#- Waits for every input (they are all dependencies of this model) and carries `main`. -#}
{% macro and_join(inputs, main) -%}
  {{ return(adapter.dispatch('and_join', 'campaign_orchestration')(inputs=inputs, main=main)) }}
{%- endmacro %}

{% macro default__and_join(inputs, main) -%}
select * from {{ main }}
{%- endmacro %}
