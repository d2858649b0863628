{#- The input rows, same count, plus one column per `add` item ([name, SQL]). -#}
{% macro enrichment(input, key, columns, add, dimension=none, links=[]) -%}
  {{ return(adapter.dispatch('enrichment', 'campaign_orchestration')(
      input=input, key=key, columns=columns, add=add, dimension=dimension, links=links)) }}
{%- endmacro %}

{% macro default__enrichment(input, key, columns, add, dimension, links) -%}
select
    {{ campaign_orchestration._columns('wt', columns) }}
    {%- for item in add %},
    {{ campaign_orchestration._sql(item[1]) }} as {{ adapter.quote(item[0]) }}
    {%- endfor %}
{{ campaign_orchestration._from_working(input, key, dimension, links) }}
{%- endmacro %}
