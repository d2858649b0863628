{#- The models of a channel activity.

    candidates: one row per recipient of `input` (and, with `per`, per matching linked row), with
      `address`, `message_key` = md5(campaign|activity|recipient key|linked key), the `columns`
      the message uses, and `exclusion_reason`, the first that applies of: no_address,
      no_consent, suppressed, frequency_cap, control_group, duplicate_address (the lowest
      recipient key keeps an address, per linked row; when the address is the linked row's,
      `per.use_address`, one message per address, the lowest linked-row key breaking ties). NULL
      when the message is to be sent.
    messages / excluded: the candidates without / with a reason.
    recipients: the rows of `input` that have a message.
    `columns` may be left out: a message whose template reads no column has none. -#}
{% macro _messages(channel, output) -%}
  {%- set key = kwargs['key'] %}
  {%- set per_key = kwargs.get('per_key') %}
  {%- set public = ['message_key', key] + ([per_key] if per_key else []) + ['address'] %}
  {%- if output == 'messages' or output == 'excluded' %}
    {%- set wanted = public + (['exclusion_reason'] if output == 'excluded' else []) + kwargs.get('columns', []) %}
select {{ campaign_orchestration._columns('candidate', wanted) }}
from {{ kwargs['candidates'] }} as candidate
where candidate.exclusion_reason is {{ "not " if output == 'excluded' }}null
  {%- elif output == 'recipients' %}
select {{ campaign_orchestration._columns('wt', kwargs.get('columns', [])) }}
from {{ kwargs['input'] }} as wt
where wt.{{ adapter.quote(key) }} in (select sent.{{ adapter.quote(key) }} from {{ kwargs['messages'] }} as sent)
  {%- else %}
{{ campaign_orchestration._message_candidates(channel, **kwargs) }}
  {%- endif %}
{%- endmacro %}


{% macro _message_candidates(channel) -%}
  {%- set key = kwargs['key'] %}
  {%- set per = kwargs.get('per') %}
  {%- set per_key = per['key_as'] if per else none %}
  {%- set cap = kwargs.get('frequency_cap') %}
  {%- set control = kwargs.get('control_group') %}
  {%- set consent = kwargs.get('consent') %}
  {%- set names = [key] + ([per_key] if per else []) + ['address'] %}
  {%- set columns = kwargs.get('columns', []) %}
  {%- for column in columns %}{% do names.append(column[0]) %}{% endfor %}
  {%- set seen = [] %}
  {%- for name in ['message_key', 'exclusion_reason', '_campaign_consent', '_campaign_complete', '_campaign_reason'] + names %}
    {%- if name | lower in seen %}
      {{- exceptions.raise_compiler_error("campaign_orchestration." ~ channel ~ ": column '" ~ name ~ "' is given twice: "
          ~ "key, per's key_as, address and columns need names of their own (message_key, exclusion_reason "
          ~ "and _campaign_* are taken; case does not count)") }}
    {%- endif %}
    {%- do seen.append(name | lower) %}
  {%- endfor %}
  {%- set address_key = campaign_orchestration._address_key(channel, 'candidate.address') %}
with candidates as (
    select
        wt.{{ adapter.quote(key) }},
        {%- if per %}
        per_row.{{ adapter.quote(per['key']) }} as {{ adapter.quote(per_key) }},
        {%- endif %}
        {{ campaign_orchestration._sql(kwargs['address']) }} as address,
        {%- for column in columns %}
        {{ campaign_orchestration._sql(column[1]) }} as {{ adapter.quote(column[0]) }},
        {%- endfor %}
        {{ campaign_orchestration._sql(consent) if consent is not none else "cast(null as boolean)" }} as _campaign_consent,
        {{ campaign_orchestration._sql(kwargs['complete']) if kwargs.get('complete') is not none else "true" }} as _campaign_complete,
        md5({{ "'" ~ kwargs['campaign'] ~ "|" ~ kwargs['activity'] ~ "|'" }} || cast(wt.{{ adapter.quote(key) }} as varchar) || '|'
            || {{ "cast(per_row." ~ adapter.quote(per['key']) ~ " as varchar)" if per else "''" }}) as message_key
    from {{ kwargs['input'] }} as wt
    inner join {{ kwargs['dimension'] }} as dim on dim.{{ adapter.quote(key) }} = wt.{{ adapter.quote(key) }}
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
            when candidate.address is null or not candidate._campaign_complete
                 or not coalesce({{ campaign_orchestration._valid_address(channel, 'candidate.address') }}, false)
                then 'no_address'
            {%- if consent is not none %}
            when not coalesce(candidate._campaign_consent, false) then 'no_consent'
            {%- endif %}
            when suppressed.address_key is not null then 'suppressed'
            {%- if cap %}
            when coalesce(capped.sent, 0) >= {{ cap['max'] }} then 'frequency_cap'
            {%- endif %}
            {%- if control %}
            when substr(md5('{{ control['seed'] }}:' || cast(candidate.{{ adapter.quote(key) }} as varchar)), 1, 8) < '{{ control['threshold'] }}'
                then 'control_group'
            {%- endif %}
        end as _campaign_reason
    from candidates as candidate
    left join (
        select distinct {{ campaign_orchestration._address_key(channel, 'suppression.address') }} as address_key
        from {{ kwargs['suppressions'] }} as suppression
        where suppression.channel = '{{ channel }}'
    ) as suppressed on suppressed.address_key = {{ address_key }}
    {%- if cap %}
    left join (
        select {{ campaign_orchestration._address_key(channel, 'delivery.address') }} as address_key, count(*) as sent
        from {{ kwargs['deliveries'] }} as delivery
        where delivery.channel = '{{ channel }}' and delivery.status = 'sent'
          and delivery.sent_at >= cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp) - interval '{{ cap['days'] }} days'
          {#- what this very occurrence of the activity sent is not counted against itself #}
          and not (delivery.campaign = '{{ kwargs['campaign'] }}' and delivery.activity = '{{ kwargs['activity'] }}'
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
        ) > 1 then 'duplicate_address'
    end as exclusion_reason
from reasons as candidate
{%- endmacro %}


{#- The form of an address two messages share when they go to the same place. -#}
{% macro _address_key(channel, sql) -%}
  {{- "lower(trim(" ~ sql ~ "))" if channel == 'email' else "trim(" ~ sql ~ ")" -}}
{%- endmacro %}


{#- Whether an address can receive the channel's messages; a direct mail address must
    also be `complete` (every column non-blank), which the compiler checks on its columns.
    An email address has no space, control character or line break (CR, LF, U+0085, U+2028...):
    none of them could be written in a header without breaking it. -#}
{% macro _valid_address(channel, sql) -%}
  {%- if channel == 'email' -%}
    {%- set part = '[^@\\s' ~ campaign_orchestration._control_characters() ~ ']+' -%}
    {{ campaign_orchestration._regex_match(sql, '^' ~ part ~ '@' ~ part ~ '\\.' ~ part ~ '$') }}
  {%- elif channel == 'sms' -%}
    {{ campaign_orchestration._regex_match(sql, '^\\+[1-9][0-9]{6,14}$') }}
  {%- else -%}
    {{ sql }} <> ''
  {%- endif -%}
{%- endmacro %}


{#- Inside a bracket expression of the engine's regular expressions: the C0 and C1 control
    characters, DEL, and the Unicode line and paragraph separators. -#}
{% macro _control_characters() -%}
  {{ return(adapter.dispatch('_control_characters', 'campaign_orchestration')()) }}
{%- endmacro %}

{% macro default___control_characters() -%}
\x00-\x1f\x7f-\x9f\x{2028}\x{2029}
{%- endmacro %}

{% macro postgres___control_characters() -%}
\x01-\x1f\x7f-\x9f\u2028\u2029
{%- endmacro %}


{% macro _regex_match(sql, pattern) -%}
  {{ return(adapter.dispatch('_regex_match', 'campaign_orchestration')(sql, pattern)) }}
{%- endmacro %}

{% macro default___regex_match(sql, pattern) -%}
regexp_like({{ sql }}, '{{ pattern }}')
{%- endmacro %}

{% macro postgres___regex_match(sql, pattern) -%}
({{ sql }} ~ '{{ pattern }}')
{%- endmacro %}

{% macro duckdb___regex_match(sql, pattern) -%}
regexp_matches({{ sql }}, '{{ pattern }}')
{%- endmacro %}
