{#- The materialization of a campaign's working tables (`campaign compile` writes
    materialized='campaign_table'): the table dbt's `table` materialization gives, built with
    fewer statements and look-ups (see _replace_relation). Spark's DDL is not transactional, a
    failed query after the drop would lose the previous table: Spark keeps dbt's `table`. -#}
{% materialization campaign_table, default %}
  {{ return(campaign_orchestration._replace_relation('table')) }}
{% endmaterialization %}

{% materialization campaign_table, adapter='spark' %}
  {{ return(materialization_table_spark()) }}
{% endmaterialization %}
