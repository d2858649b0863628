{#- Moves a working table to the entity at the end of a link, as `dst`, filtered by `where`.
    cardinality many: one row per linked target row, with the `carry` columns of its first
    upstream row (by upstream key); one: the distinct target keys. -#}
{% macro change_dimension(input, key, target, target_key, on, cardinality, where=none, carry=[],
                          dimension=none, links=[]) -%}
  {{ return(adapter.dispatch('change_dimension', 'campaign_orchestration')(
      input=input, key=key, target=target, target_key=target_key, on=on, cardinality=cardinality,
      where=where, carry=carry, dimension=dimension, links=links)) }}
{%- endmacro %}

{% macro default__change_dimension(input, key, target, target_key, on, cardinality, where, carry, dimension, links) -%}
  {%- set source_sql -%}
from {{ input }} as wt
    {%- if dimension is not none %}
inner join {{ dimension }} as dim on dim.{{ adapter.quote(key) }} = wt.{{ adapter.quote(key) }}
    {%- endif %}
inner join {{ target }} as dst
    on {% for pair in on %}dst.{{ adapter.quote(pair[1]) }} = {{ campaign_orchestration._sql(pair[0]) }}{{ " and " if not loop.last }}{% endfor %}
{{- campaign_orchestration._link_joins(links) }}
    {%- if where is not none %}
where {{ campaign_orchestration._sql(where) }}
    {%- endif %}
  {%- endset -%}
  {%- if cardinality == 'one' -%}
select distinct dst.{{ adapter.quote(target_key) }}
{{ source_sql }}
  {%- else -%}
select moved.{{ adapter.quote(target_key) }}{% for column in carry %}, moved.{{ adapter.quote(column) }}{% endfor %}
from (
    select
        dst.{{ adapter.quote(target_key) }},
        {%- for column in carry %}
        wt.{{ adapter.quote(column) }},
        {%- endfor %}
        row_number() over (partition by dst.{{ adapter.quote(target_key) }} order by wt.{{ adapter.quote(key) }}) as _campaign_rank
    {{ source_sql | indent(4) }}
) as moved
where moved._campaign_rank = 1
  {%- endif %}
{%- endmacro %}
