{#- Distinct keys of a dimension whose row satisfies `where`, optionally only among the keys of a
    model or saved audience (`keys_from`). -#}
{% macro build_audience(dimension, key, where=none, links=[], keys_from=none) -%}
  {{ return(adapter.dispatch('build_audience', 'campaign_orchestration')(
      dimension=dimension, key=key, where=where, links=links, keys_from=keys_from)) }}
{%- endmacro %}

{% macro default__build_audience(dimension, key, where, links, keys_from) -%}
select distinct dim.{{ adapter.quote(key) }}
from {{ dimension }} as dim
{{- campaign_orchestration._link_joins(links) }}
{%- set filters = [] %}
{%- if keys_from is not none %}
  {%- do filters.append('dim.' ~ adapter.quote(key) ~ ' in (select audience.' ~ adapter.quote(key) ~ ' from ' ~ keys_from ~ ' as audience)') %}
{%- endif %}
{%- if where is not none %}
  {%- do filters.append('(' ~ campaign_orchestration._sql(where) ~ ')') %}
{%- endif %}
{%- if filters %}
where {{ filters | join('\n  and ') }}
{%- endif %}
{%- endmacro %}
