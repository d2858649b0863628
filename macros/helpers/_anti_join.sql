{#- Rows of `input` whose key is in none of `results`: complements, duplicates, unmatched rows. -#}
{% macro _anti_join(input, results, key, columns) -%}
select {{ campaign_orchestration._columns('wt', columns) }}
from {{ input }} as wt
{%- for result in results %}
{{ "where" if loop.first else "  and" }} not exists (
    select 1 from {{ result }} as kept
    where kept.{{ adapter.quote(key) }} = wt.{{ adapter.quote(key) }}
)
{%- endfor %}
{%- endmacro %}
