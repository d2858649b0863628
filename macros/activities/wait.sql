{#- A wait's models, by `output`:

    waiting: the populations that entered the wait, one per occurrence, kept from build to build (an
      incremental model that a full refresh does not empty). Building it for occurrence
      `var('campaign_occurrence')` records the rows of `input` then, with `_campaign_occurrence`,
      `_campaign_entered_at` (the time of the step being built, _campaign_now) and `_campaign_release_at`
      (`offset_seconds` later, and not before `floor` for an `until`), unless that occurrence is
      recorded already: a population, once recorded, is the one that is released. A simulation
      (`var('campaign_simulation')`) records nothing.
    out: the population the current occurrence recorded (`waiting`), the rows released after the wait.

    `columns` are the input's columns, the key first. -#}
{% macro wait(output, columns, input=none, waiting=none, offset_seconds=0, floor=none) -%}
  {{ return(adapter.dispatch('wait', 'campaign_orchestration')(
      output=output, columns=columns, input=input, waiting=waiting, offset_seconds=offset_seconds, floor=floor)) }}
{%- endmacro %}

{% macro default__wait(output, columns, input, waiting, offset_seconds, floor) -%}
  {%- set occurrence = "'" ~ (var('campaign_occurrence', 'once') | replace("'", "''")) ~ "'" %}
  {%- if output == 'waiting' %}
    {%- set release = campaign_orchestration._campaign_now() ~ " + interval '" ~ offset_seconds ~ " seconds'" %}
    {%- if floor is not none %}
      {%- set release = "greatest(cast('" ~ floor ~ "' as timestamp), " ~ release ~ ")" %}
    {%- endif %}
select
    {{ campaign_orchestration._columns('wt', columns) }},
    cast({{ occurrence }} as {{ campaign_orchestration._sql_type('text') }}) as _campaign_occurrence,
    cast({{ campaign_orchestration._campaign_now() }} as timestamp) as _campaign_entered_at,
    cast({{ release }} as timestamp) as _campaign_release_at
from {{ input }} as wt
where {{ "false and " if var('campaign_simulation', false) }}true
    {%- if is_incremental() %}
  and not exists (select 1 from {{ this }} as recorded where recorded._campaign_occurrence = {{ occurrence }})
    {%- endif %}
  {%- else %}
select {{ campaign_orchestration._columns('waiting', columns) }}
from {{ waiting }} as waiting
where waiting._campaign_occurrence = {{ occurrence }}
  {%- endif %}
{%- endmacro %}
