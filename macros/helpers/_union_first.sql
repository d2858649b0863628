{#- Keys in any input; each key's row comes from the first input that has it. -#}
{% macro _union_first(inputs, key, columns) -%}
  {%- for input in inputs %}
    {%- set earlier = inputs[:loop.index0] %}
    {%- if not loop.first %}
union all
    {%- endif %}
select {{ campaign_orchestration._columns('wt', columns) }}
from {{ input }} as wt
    {%- for other in earlier %}
{{ "where" if loop.first else "  and" }} not exists (
    select 1 from {{ other }} as earlier
    where earlier.{{ adapter.quote(key) }} = wt.{{ adapter.quote(key) }}
)
    {%- endfor %}
  {%- endfor %}
{%- endmacro %}
