{#- The materialization of a campaign's working tables (`campaign compile` writes
    materialized='campaign_table'): the table dbt's `table` materialization gives, built with
    fewer statements and look-ups.

    A campaign's build is a chain of a dozen or more small tables, and on DuckDB dbt's own work per
    model weighed as much as the queries: the `table` materialization creates an intermediate
    table, looks up the indexes and foreign keys of the old one, renames it to a backup, renames
    the new one into place, commits and drops the backup, each step a macro rendered and a
    statement. Here the old relation is dropped and the new one created by one statement, in the
    node's transaction with the post-hooks (record_build): a failed query rolls the drop back and
    leaves the previous table, and its recorded build, as they were. Grants, persist_docs, hooks,
    the relation cache and run_results are as with `table`.

    What differs: the old table is locked from the start of the query rather than from the rename
    (PostgreSQL: its readers wait for the build), and it is dropped with `cascade` before the new
    one exists, where `table` drops the renamed backup with `cascade` after the commit (either way
    the views built on it go on PostgreSQL; DuckDB's views bind by name and stay). Adapters without
    transactional DDL (Spark) keep dbt's `table` materialization. -#}
{% materialization campaign_table, default %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set grant_config = config.get('grants') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- if existing_relation is not none %}{% do adapter.cache_dropped(existing_relation) %}{% endif %}
  {% call statement('main') -%}
    {%- if existing_relation is not none -%}
      {{ get_drop_sql(existing_relation) }};
    {% endif -%}
    {{ create_table_as(False, target_relation, sql) }}
  {%- endcall %}
  {% do create_indexes(target_relation) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke(existing_relation, full_refresh_mode=True)) %}
  {% do persist_docs(target_relation, model) %}

  {{ adapter.commit() }}

  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{#- Spark's DDL is not transactional: a failed query after the drop would lose the previous table. -#}
{% materialization campaign_table, adapter='spark' %}
  {{ return(materialization_table_spark()) }}
{% endmaterialization %}
