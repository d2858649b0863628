{#- Output 'candidates' of a channel activity (see _messages): one row per recipient of `input`
    (and, with `per`, per matching linked row) with `address`, `message_key`, the `columns` the
    message uses, and `exclusion_reason`.

    The compiler passes what it shares with this macro (campaign_compiler/compile/contract.py):
    `exclusion_reasons`, in the order they apply, the first winning (duplicate_address last: the
    lowest recipient key keeps an address, per linked row; when the address is the linked row's,
    `per.use_address`, one message per address, the lowest linked-row key breaking ties);
    `reserved_columns`, the candidates' own columns, which key, per's key_as and columns may not be
    named; `address_pattern`, the regular expression the channel's addresses match (see _valid_address). -#}
{% macro _message_candidates(channel, campaign, activity, input, key, dimension, address, suppressions,
                             exclusion_reasons, reserved_columns, address_pattern=none, complete=none,
                             columns=[], consent=none, frequency_cap=none, control_group=none,
                             deliveries=none, per=none) -%}
  {%- set per_key = per['key_as'] if per else none %}
  {%- set given = [key] + ([per_key] if per else []) + columns | map(attribute=0) | list %}
  {%- set seen = [] %}
  {%- for name in reserved_columns + given %}
    {%- if name | lower in seen %}
      {{- exceptions.raise_compiler_error("campaign_orchestration." ~ channel ~ ": column '" ~ name ~ "' is given twice: "
          ~ "key, per's key_as and columns need names of their own (" ~ reserved_columns | join(', ')
          ~ " are taken; case does not count)") }}
    {%- endif %}
    {%- do seen.append(name | lower) %}
  {%- endfor %}
  {%- if exclusion_reasons | last != 'duplicate_address' %}
    {{- exceptions.raise_compiler_error("campaign_orchestration." ~ channel ~ ": duplicate_address must be the last "
        ~ "exclusion reason, not " ~ exclusion_reasons | join(', ')) }}
  {%- endif %}
  {%- set names = [key] + ([per_key] if per else []) + ['address'] + columns | map(attribute=0) | list %}
  {%- set address_key = campaign_orchestration._address_key(channel, 'candidate.address') %}
  {%- set cap, control = frequency_cap, control_group %}
  {%- set text = campaign_orchestration._sql_type('text') %}
  {#- the condition of each reason but the last, none when it cannot apply -#}
  {%- set conditions = {
      'no_address': "candidate.address is null or not candidate._campaign_complete or not coalesce("
          ~ campaign_orchestration._valid_address('candidate.address', address_pattern) ~ ", false)",
      'no_consent': "not coalesce(candidate._campaign_consent, false)" if consent is not none else none,
      'suppressed': "suppressed.address_key is not null",
      'frequency_cap': "coalesce(capped.sent, 0) >= " ~ cap['max'] if cap else none,
      'control_group': "substr(md5('" ~ control['seed'] ~ ":' || cast(candidate." ~ adapter.quote(key)
          ~ " as " ~ text ~ ")), 1, 8) < '" ~ control['threshold'] ~ "'" if control else none,
  } %}
  {%- for reason in exclusion_reasons[:-1] if reason not in conditions %}
    {{- exceptions.raise_compiler_error("campaign_orchestration." ~ channel ~ ": unknown exclusion reason '" ~ reason ~ "'") }}
  {%- endfor %}
with candidates as (
    select
        wt.{{ adapter.quote(key) }},
        {%- if per %}
        per_row.{{ adapter.quote(per['key']) }} as {{ adapter.quote(per_key) }},
        {%- endif %}
        {{ campaign_orchestration._sql(address) }} as address,
        {%- for column in columns %}
        {{ campaign_orchestration._sql(column[1]) }} as {{ adapter.quote(column[0]) }},
        {%- endfor %}
        {{ campaign_orchestration._sql(consent) if consent is not none else "cast(null as boolean)" }} as _campaign_consent,
        {{ campaign_orchestration._sql(complete) if complete is not none else "true" }} as _campaign_complete,
        md5({{ "'" ~ campaign ~ "|" ~ activity ~ "|'" }} || cast(wt.{{ adapter.quote(key) }} as {{ text }}) || '|'
            || {{ "cast(per_row." ~ adapter.quote(per['key']) ~ " as " ~ text ~ ")" if per else "''" }}) as message_key
    from {{ input }} as wt
    inner join {{ dimension }} as dim on dim.{{ adapter.quote(key) }} = wt.{{ adapter.quote(key) }}
    {%- if per %}
    inner join {{ per['relation'] }} as per_row
        on {% for pair in per['on'] %}per_row.{{ adapter.quote(pair[1]) }} = {{ campaign_orchestration._sql(pair[0]) }}{{ " and " if not loop.last }}{% endfor %}
    {{- campaign_orchestration._link_joins(per.get('links', [])) | indent(4) }}
      {%- if per['where'] is not none %}
    where {{ campaign_orchestration._sql(per['where']) }}
      {%- endif %}
    {%- endif %}
),

reasons as (
    select
        candidate.*,
        case
            {%- for reason in exclusion_reasons[:-1] if conditions[reason] is not none %}
            when {{ conditions[reason] }} then '{{ reason }}'
            {%- endfor %}
        end as _campaign_reason
    from candidates as candidate
    left join (
        select distinct {{ campaign_orchestration._address_key(channel, 'suppression.address') }} as address_key
        from {{ suppressions }} as suppression
        where suppression.channel = '{{ channel }}'
    ) as suppressed on suppressed.address_key = {{ address_key }}
    {%- if cap %}
    left join (
        select {{ campaign_orchestration._address_key(channel, 'delivery.address') }} as address_key, count(*) as sent
        from {{ campaign_orchestration._delivery_log(deliveries) }} as delivery
        where delivery.channel = '{{ channel }}' and delivery.status = 'sent'
          and delivery.sent_at >= {{ campaign_orchestration._campaign_now() }} - interval '{{ cap['days'] }} days'
          {#- what this very occurrence of the activity sent is not counted against itself #}
          and not (delivery.campaign = '{{ campaign }}' and delivery.activity = '{{ activity }}'
                   and delivery.occurrence = '{{ var('campaign_occurrence', 'once') | replace("'", "''") }}')
        group by 1
    ) as capped on capped.address_key = {{ address_key }}
    {%- endif %}
)

select
    {{ campaign_orchestration._columns('candidate', ['message_key'] + names) }},
    case
        when candidate._campaign_reason is not null then candidate._campaign_reason
        when row_number() over (
            partition by {{ address_key }}{{ ", candidate." ~ adapter.quote(per_key) if per and not per['use_address'] }}, candidate._campaign_reason is null
            order by candidate.{{ adapter.quote(key) }}{{ ", candidate." ~ adapter.quote(per_key) if per }}
        ) > 1 then '{{ exclusion_reasons | last }}'
    end as exclusion_reason
from reasons as candidate
{%- endmacro %}
