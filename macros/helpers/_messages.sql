{#- The models of a channel activity, by `output`:

    candidates: every candidate message with its exclusion_reason, NULL when it is to be sent (see
      _message_candidates, which takes the other arguments).
    messages / excluded: the columns of `candidates` without / with a reason: message_key, `key`,
      `per_key`, address (excluded: exclusion_reason) and `columns`, the names the message uses.
    recipients: the `columns` of the rows of `input` that have a row in `messages`.
    `columns` may be left out: a message whose template reads no column has none. -#}
{% macro _messages(channel, output, key, columns=[], input=none, candidates=none, per_key=none, messages=none,
                   campaign=none, activity=none, dimension=none, address=none, complete=none, consent=none,
                   frequency_cap=none, control_group=none, suppressions=none, deliveries=none, per=none,
                   exclusion_reasons=[], reserved_columns=[], address_pattern=none) -%}
  {%- if output == 'messages' or output == 'excluded' %}
    {%- set public = ['message_key', key] + ([per_key] if per_key else []) + ['address'] %}
    {%- set wanted = public + (['exclusion_reason'] if output == 'excluded' else []) + columns %}
select {{ campaign_orchestration._columns('candidate', wanted) }}
from {{ candidates }} as candidate
where candidate.exclusion_reason is {{ "not " if output == 'excluded' }}null
  {%- elif output == 'recipients' %}
select {{ campaign_orchestration._columns('wt', columns) }}
from {{ input }} as wt
where wt.{{ adapter.quote(key) }} in (select sent.{{ adapter.quote(key) }} from {{ messages }} as sent)
  {%- else %}
{{ campaign_orchestration._message_candidates(
    channel, campaign=campaign, activity=activity, input=input, key=key, dimension=dimension, address=address,
    suppressions=suppressions, exclusion_reasons=exclusion_reasons, reserved_columns=reserved_columns,
    address_pattern=address_pattern, complete=complete, columns=columns, consent=consent,
    frequency_cap=frequency_cap, control_group=control_group, deliveries=deliveries, per=per) }}
  {%- endif %}
{%- endmacro %}
