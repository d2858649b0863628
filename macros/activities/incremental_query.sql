{#- The keys build_audience gives, among the rows whose `since` column is new: later than the
    watermark — the time of the campaign's last successful occurrence before this one, from
    campaign_occurrences.watermark, which a later failed try of an occurrence keeps (none on the
    first run: every row) — and not later than this occurrence's
    time (_campaign_now). A NULL `since` is never new. A date counts from its midnight. -#}
{% macro incremental_query(dimension, key, since, campaign, occurrences, where=none, links=[], keys_from=none) -%}
  {{ return(adapter.dispatch('incremental_query', 'campaign_orchestration')(
      dimension=dimension, key=key, since=since, campaign=campaign, occurrences=occurrences,
      where=where, links=links, keys_from=keys_from)) }}
{%- endmacro %}

{% macro default__incremental_query(dimension, key, since, campaign, occurrences, where, links, keys_from) -%}
  {%- set now = campaign_orchestration._campaign_now() %}
  {%- set value = 'cast(dim.' ~ adapter.quote(since) ~ ' as timestamp)' %}
  {%- set watermark -%}
(select max(occurrence.watermark) from {{ occurrences }} as occurrence
     where occurrence.campaign = '{{ campaign }}' and occurrence.step = 'start'
       and occurrence.watermark < {{ now }})
  {%- endset %}
  {%- set new_rows = value ~ ' <= ' ~ now ~ '\n  and coalesce(' ~ value ~ ' > ' ~ watermark ~ ', true)' %}
  {%- set condition = new_rows if where is none else '(' ~ campaign_orchestration._sql(where) ~ ')\n  and ' ~ new_rows %}
  {{- return(campaign_orchestration.build_audience(dimension, key, where=condition, links=links, keys_from=keys_from)) -}}
{%- endmacro %}
