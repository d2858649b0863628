{#- For each value of `partition` (the dedup keys), the first `count` rows in `order` (ties by
    key); rows with a NULL key value are all kept. output 'duplicates': the rows removed. -#}
{% macro deduplication(input, key, columns, partition, order=[], count=1, dimension=none, links=[],
                       output='out', kept=none) -%}
  {{ return(adapter.dispatch('deduplication', 'campaign_orchestration')(
      input=input, key=key, columns=columns, partition=partition, order=order, count=count,
      dimension=dimension, links=links, output=output, kept=kept)) }}
{%- endmacro %}

{% macro default__deduplication(input, key, columns, partition, order, count, dimension, links, output, kept) -%}
  {%- if output == 'duplicates' -%}
{{ campaign_orchestration._anti_join(input, [kept], key, columns) }}
  {%- else -%}
select {{ campaign_orchestration._columns('ranked', columns) }}
from (
    select
        {{ campaign_orchestration._columns('wt', columns) }},
        row_number() over (
            partition by {% for item in partition %}{{ campaign_orchestration._sql(item) }}{{ ", " if not loop.last }}{% endfor %}
            order by {% for item in order %}{{ campaign_orchestration._sql(item) }}, {% endfor %}wt.{{ adapter.quote(key) }}
        ) as _campaign_rank,
        ({% for item in partition %}({{ campaign_orchestration._sql(item) }}) is null{{ " or " if not loop.last }}{% endfor %}) as _campaign_null_key
    {{ campaign_orchestration._from_working(input, key, dimension, links) | indent(4) }}
) as ranked
where ranked._campaign_null_key or ranked._campaign_rank <= {{ count }}
  {%- endif %}
{%- endmacro %}
