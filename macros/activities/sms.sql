{#- A sms activity's models: output 'candidates' (every candidate message with its
    exclusion_reason), 'messages', 'excluded', 'recipients' (see _messages). -#}
{% macro sms(output) -%}
  {{ return(adapter.dispatch('sms', 'campaign_orchestration')(output, **kwargs)) }}
{%- endmacro %}

{% macro default__sms(output) -%}
  {{ return(campaign_orchestration._messages('sms', output, **kwargs)) }}
{%- endmacro %}
