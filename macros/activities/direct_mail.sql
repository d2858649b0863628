{#- A direct_mail activity's models: output 'candidates' (every candidate message with its
    exclusion_reason), 'messages', 'excluded', 'recipients' (see _messages). -#}
{% macro direct_mail(output) -%}
  {{ return(adapter.dispatch('direct_mail', 'campaign_orchestration')(output, **kwargs)) }}
{%- endmacro %}

{% macro default__direct_mail(output) -%}
  {{ return(campaign_orchestration._messages('direct_mail', output, **kwargs)) }}
{%- endmacro %}
