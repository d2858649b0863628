{#- A push activity's models: output 'candidates' (every candidate message with its
    exclusion_reason), 'messages', 'excluded', 'recipients' (see _messages). -#}
{% macro push(output) -%}
  {{ return(adapter.dispatch('push', 'campaign_orchestration')(output, **kwargs)) }}
{%- endmacro %}

{% macro default__push(output) -%}
  {{ return(campaign_orchestration._messages('push', output, **kwargs)) }}
{%- endmacro %}
