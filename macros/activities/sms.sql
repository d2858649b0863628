{#- A sms activity's models, by `output`: 'candidates' (every candidate message with its
    exclusion_reason), 'messages', 'excluded', 'recipients' (see _messages and _message_candidates). -#}
{% macro sms(output, key, columns=[], input=none, candidates=none, per_key=none, messages=none,
             campaign=none, activity=none, dimension=none, address=none, complete=none, consent=none,
             frequency_cap=none, control_group=none, suppressions=none, deliveries=none, per=none,
             exclusion_reasons=[], reserved_columns=[], address_pattern=none) -%}
  {{ return(adapter.dispatch('sms', 'campaign_orchestration')(
      output=output, key=key, columns=columns, input=input, candidates=candidates, per_key=per_key,
      messages=messages, campaign=campaign, activity=activity, dimension=dimension, address=address,
      complete=complete, consent=consent, frequency_cap=frequency_cap, control_group=control_group,
      suppressions=suppressions, deliveries=deliveries, per=per, exclusion_reasons=exclusion_reasons,
      reserved_columns=reserved_columns, address_pattern=address_pattern)) }}
{%- endmacro %}

{% macro default__sms(output, key, columns, input, candidates, per_key, messages, campaign, activity,
                      dimension, address, complete, consent, frequency_cap, control_group, suppressions,
                      deliveries, per, exclusion_reasons, reserved_columns, address_pattern) -%}
  {{ return(campaign_orchestration._messages(
      'sms', output=output, key=key, columns=columns, input=input, candidates=candidates, per_key=per_key,
      messages=messages, campaign=campaign, activity=activity, dimension=dimension, address=address,
      complete=complete, consent=consent, frequency_cap=frequency_cap, control_group=control_group,
      suppressions=suppressions, deliveries=deliveries, per=per, exclusion_reasons=exclusion_reasons,
      reserved_columns=reserved_columns, address_pattern=address_pattern)) }}
{%- endmacro %}
