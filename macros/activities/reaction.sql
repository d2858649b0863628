{#- Output 'yes' of a reaction: the input rows to whom channel activity `of` of the campaign sent
    a message in this occurrence (var campaign_occurrence) that has an `event` in campaign_events —
    at or before its sent_at plus `within_seconds` when given; output 'no': the other input rows.
    A recipient is matched as the send step logs it: its key as text. -#}
{% macro reaction(input, key, columns, campaign, of, event, deliveries, events, within_seconds=none, output='yes') -%}
  {{ return(adapter.dispatch('reaction', 'campaign_orchestration')(
      input=input, key=key, columns=columns, campaign=campaign, of=of, event=event,
      deliveries=deliveries, events=events, within_seconds=within_seconds, output=output)) }}
{%- endmacro %}

{% macro default__reaction(input, key, columns, campaign, of, event, deliveries, events, within_seconds, output) -%}
  {%- if output not in ('yes', 'no') %}
    {{- exceptions.raise_compiler_error("campaign_orchestration.reaction: output must be 'yes' or 'no', not '" ~ output ~ "'") }}
  {%- endif %}
select {{ campaign_orchestration._columns('wt', columns) }}
from {{ input }} as wt
where {{ "not " if output == 'no' }}exists (
    select 1
    from {{ campaign_orchestration._delivery_log(deliveries) }} as delivery
    inner join {{ events }} as reacted
        on reacted.message_key = delivery.message_key and reacted.occurrence = delivery.occurrence
    where delivery.campaign = '{{ campaign }}' and delivery.activity = '{{ of }}'
      and delivery.occurrence = '{{ var('campaign_occurrence', 'once') | replace("'", "''") }}'
      and delivery.status = 'sent'
      and delivery.recipient_key = cast(wt.{{ adapter.quote(key) }} as {{ campaign_orchestration._sql_type('text') }})
      and reacted.event = '{{ event }}'
      {%- if within_seconds is not none %}
      and reacted.{{ adapter.quote('at') }} <= delivery.sent_at + interval '{{ within_seconds }} seconds'
      {%- endif %}
)
{%- endmacro %}
