{#- Incoming rows matched to a dimension on every `match` pair (NULLs never match).
    out: one row per matched key, with the `carry` columns of its first incoming row;
    unmatched: the incoming rows that match no key. -#}
{% macro reconciliation(incoming, dimension, key, match, carry=[], order=[], output='out') -%}
  {{ return(adapter.dispatch('reconciliation', 'campaign_orchestration')(
      incoming=incoming, dimension=dimension, key=key, match=match, carry=carry, order=order,
      output=output)) }}
{%- endmacro %}

{% macro default__reconciliation(incoming, dimension, key, match, carry, order, output) -%}
  {%- set conditions = [] %}
  {%- for pair in match %}
    {%- set incoming_sql = 'inc.' ~ adapter.quote(pair[0]) %}
    {%- if pair[2] is not none %}
      {%- set incoming_sql = 'cast(' ~ incoming_sql ~ ' as ' ~ campaign_orchestration._sql_type(pair[2]) ~ ')' %}
    {%- endif %}
    {%- do conditions.append('dim.' ~ adapter.quote(pair[1]) ~ ' = ' ~ incoming_sql) %}
  {%- endfor %}
  {%- if output == 'unmatched' %}
select inc.*
from {{ incoming }} as inc
where not exists (
    select 1 from {{ dimension }} as dim
    where {{ conditions | join('\n      and ') }}
)
  {%- else %}
select matched.{{ adapter.quote(key) }}{% for column in carry %}, matched.{{ adapter.quote(column) }}{% endfor %}
from (
    select
        dim.{{ adapter.quote(key) }},
        {%- for column in carry %}
        inc.{{ adapter.quote(column) }},
        {%- endfor %}
        row_number() over (
            partition by dim.{{ adapter.quote(key) }}
            order by {% for column in order %}inc.{{ adapter.quote(column) }}{{ ", " if not loop.last }}{% else %}1{% endfor %}
        ) as _campaign_rank
    from {{ incoming }} as inc
    inner join {{ dimension }} as dim
        on {{ conditions | join('\n       and ') }}
) as matched
where matched._campaign_rank = 1
  {%- endif %}
{%- endmacro %}
