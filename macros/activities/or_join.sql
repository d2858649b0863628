{#- The union of the inputs, distinct by key, each row from the first input that has it. -#}
{% macro or_join(inputs, key, columns) -%}
  {{ return(adapter.dispatch('or_join', 'campaign_orchestration')(inputs=inputs, key=key, columns=columns)) }}
{%- endmacro %}

{% macro default__or_join(inputs, key, columns) -%}
{{ campaign_orchestration._union_first(inputs, key, columns) }}
{%- endmacro %}
