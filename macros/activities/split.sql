{#- One subset of a split: the input rows for which `where` holds (the compiler has already made
    it exclusive of earlier subsets unless overlap), limited to `limit` rows ({'count': N} or
    {'percent': [numerator, denominator]} of the subset's rows, rounded down) in `order`
    (ties by key) or in a seeded random order. output 'complement': input rows in none of `subsets`. -#}
{% macro split(input, key, columns, output='subset', where=none, dimension=none, links=[],
               limit=none, order=[], random_seed=none, subsets=[]) -%}
  {{ return(adapter.dispatch('split', 'campaign_orchestration')(
      input=input, key=key, columns=columns, output=output, where=where, dimension=dimension,
      links=links, limit=limit, order=order, random_seed=random_seed, subsets=subsets)) }}
{%- endmacro %}

{% macro default__split(input, key, columns, output, where, dimension, links, limit, order, random_seed, subsets) -%}
  {%- if output == 'complement' -%}
{{ campaign_orchestration._anti_join(input, subsets, key, columns) }}
  {%- elif limit is none -%}
select {{ campaign_orchestration._columns('wt', columns) }}
{{ campaign_orchestration._from_working(input, key, dimension, links) }}
where {{ campaign_orchestration._sql(where) }}
  {%- else -%}
    {%- set key_sql = 'wt.' ~ adapter.quote(key) %}
select {{ campaign_orchestration._columns('ranked', columns) }}
from (
    select
        {{ campaign_orchestration._columns('wt', columns) }},
        row_number() over (order by
            {%- for item in order %} {{ campaign_orchestration._sql(item) }},{% endfor %}
            {%- if random_seed is not none %} {{ campaign_orchestration._random_order(key_sql, random_seed) }},{% endif %}
            {{ key_sql }}) as _campaign_rank,
        count(*) over () as _campaign_rows
    {{ campaign_orchestration._from_working(input, key, dimension, links) | indent(4) }}
    where {{ campaign_orchestration._sql(where) }}
) as ranked
    {%- if 'count' in limit %}
where ranked._campaign_rank <= {{ limit['count'] }}
    {%- else %}
where ranked._campaign_rank <= {{ campaign_orchestration._floor_div(
        'ranked._campaign_rows * ' ~ limit['percent'][0], 100 * limit['percent'][1]) }}
    {%- endif %}
  {%- endif %}
{%- endmacro %}
