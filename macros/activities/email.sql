{#- A email activity's models: output 'candidates' (every candidate message with its
    exclusion_reason), 'messages', 'excluded', 'recipients' (see _messages). -#}
{% macro email(output) -%}
  {{ return(adapter.dispatch('email', 'campaign_orchestration')(output, **kwargs)) }}
{%- endmacro %}

{% macro default__email(output) -%}
  {{ return(campaign_orchestration._messages('email', output, **kwargs)) }}
{%- endmacro %}
