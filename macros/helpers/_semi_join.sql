{#- `[NOT] EXISTS (...)`: whether the row has rows of `link` (a link as _link_joins reads it:
    relation, on, where, links), which engines plan as a semi-join (anti-join) without grouping
    the linked rows. -#}
{% macro _semi_join(link, exists) -%}
  {%- set row = link['alias'] ~ '_row' -%}
{{ "not " if not exists }}exists (
    select 1
    from {{ link['relation'] }} as {{ row }}
    {{- campaign_orchestration._link_joins(link['links']) | indent(4) }}
    where {% for pair in link['on'] %}{{ row }}.{{ adapter.quote(pair[1]) }} = {{ campaign_orchestration._sql(pair[0]) }}{{ " and " if not loop.last }}{% endfor %}
    {%- if link['where'] is not none %}
      and ({{ campaign_orchestration._sql(link['where']) }})
    {%- endif %}
)
{%- endmacro %}
