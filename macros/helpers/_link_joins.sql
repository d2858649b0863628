{#- LEFT JOINs of link derived tables, one row per link value (see campaign_compiler/conditions.py).

    A link is a mapping: alias, relation, kind (exists | aggregate | rank), on [[outer SQL, target
    column], ...], key (the target's key), where, links (nested, inside the derived table),
    columns [[name, SQL], ...], order [SQL, ...] and rank (kind rank).
    The derived table `<alias>` has k1..kn (the link values) and the columns; for kind aggregate,
    `<alias>_empty` holds the columns' value over no row, which is what an unmatched row gets.
    Aggregates over one link with different `where`s arrive as one link whose columns carry their
    own FILTER (where is then the OR of theirs): one scan and GROUP BY of the linked rows. -#}
{% macro _link_joins(links) -%}
  {%- for link in links %}
    {%- set row = link['alias'] ~ '_row' %}
left join (
    {%- if link['kind'] == 'rank' %}
    select {% for pair in link['on'] %}ranked.k{{ loop.index }}, {% endfor -%}
      {%- for column in link['columns'] %}ranked.{{ column[0] }}{{ ", " if not loop.last }}{% endfor %}
    from (
    {%- endif %}
    select
        {%- for pair in link['on'] %}
        {{ row }}.{{ adapter.quote(pair[1]) }} as k{{ loop.index }}{{ "," if not loop.last or link['columns'] or link['kind'] == 'rank' }}
        {%- endfor %}
        {%- for column in link['columns'] %}
        {{ campaign_orchestration._sql(column[1]) }} as {{ column[0] }}{{ "," if not loop.last or link['kind'] == 'rank' }}
        {%- endfor %}
        {%- if link['kind'] == 'rank' %}
        row_number() over (
            partition by {% for pair in link['on'] %}{{ row }}.{{ adapter.quote(pair[1]) }}{{ ", " if not loop.last }}{% endfor %}
            order by {% for item in link['order'] %}{{ campaign_orchestration._sql(item) }}, {% endfor %}{{ row }}.{{ adapter.quote(link['key']) }}
        ) as _campaign_rank
        {%- endif %}
    from {{ link['relation'] }} as {{ row }}
    {{- campaign_orchestration._link_joins(link['links']) | indent(4) }}
    {%- if link['where'] is not none %}
    where {{ campaign_orchestration._sql(link['where']) }}
    {%- endif %}
    {%- if link['kind'] != 'rank' %}
    group by {% for pair in link['on'] %}{{ row }}.{{ adapter.quote(pair[1]) }}{{ ", " if not loop.last }}{% endfor %}
    {%- else %}
    ) as ranked
    where ranked._campaign_rank = {{ link['rank'] }}
    {%- endif %}
) as {{ link['alias'] }}
    on {% for pair in link['on'] %}{{ link['alias'] }}.k{{ loop.index }} = {{ campaign_orchestration._sql(pair[0]) }}{{ " and " if not loop.last }}{% endfor %}
    {%- if link['kind'] == 'aggregate' %}
cross join (
    select
        {%- for column in link['columns'] %}
        {{ campaign_orchestration._sql(column[1]) }} as {{ column[0] }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ link['relation'] }} as {{ row }}
    where 1 = 0
) as {{ link['alias'] }}_empty
    {%- endif %}
  {%- endfor %}
{%- endmacro %}
