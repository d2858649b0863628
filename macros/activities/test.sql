{#- One output of a test: the input when `when` (over the input's row count, `cnt.n`) selects
    this output, otherwise nothing. The compiler makes `when` exclusive of earlier outputs. -#}
{% macro test(input, when) -%}
  {{ return(adapter.dispatch('test', 'campaign_orchestration')(input=input, when=when)) }}
{%- endmacro %}

{% macro default__test(input, when) -%}
select wt.*
from {{ input }} as wt
cross join (select count(*) as n from {{ input }}) as cnt
where {{ campaign_orchestration._sql(when) }}
{%- endmacro %}
