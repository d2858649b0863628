{#- FROM clause over a working table `wt`, with its dimension's entity as `dim` when the
    activity's SQL reads entity columns, and the link joins that SQL needs. -#}
{% macro _from_working(input, key, dimension=none, links=[]) -%}
from {{ input }} as wt
{%- if dimension is not none %}
inner join {{ dimension }} as dim on dim.{{ adapter.quote(key) }} = wt.{{ adapter.quote(key) }}
{%- endif %}
{{- campaign_orchestration._link_joins(links) }}
{%- endmacro %}
