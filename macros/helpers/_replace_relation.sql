{#- The body of the campaign_table and campaign_view materializations: `this` replaced by a table
    or a view of the model's query.

    A campaign's build is a chain of a dozen or more small relations, and on DuckDB dbt's own work
    per model weighed as much as the queries: dbt's `table` materialization creates an intermediate
    table, looks up the indexes and foreign keys of the old one, renames it to a backup, renames the
    new one into place, commits and drops the backup, each step a macro rendered and a statement
    (`view` the same but the look-ups). Here the old relation is dropped and the new one created by
    one statement, in the node's transaction with the post-hooks (record_build): a failed query
    rolls the drop back and leaves the previous relation, and its recorded build, as they were.
    Hooks, grants, persist_docs, indexes, contracts (through the adapter's create macros), the
    relation cache and run_results are as with dbt's materializations.

    What differs: the old relation is locked from the start of the query rather than from the
    rename (PostgreSQL: its readers wait for the build), and it is dropped with `cascade` before the
    new one exists, where dbt drops the renamed backup with `cascade` after the commit: either way
    the views built on it go on PostgreSQL, and stay on DuckDB, whose views bind by name. Only for
    adapters whose DDL is transactional (DuckDB, PostgreSQL). -#}
{% macro _replace_relation(type) %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type=type) -%}
  {%- set grant_config = config.get('grants') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- if existing_relation is not none %}{% do adapter.cache_dropped(existing_relation) %}{% endif %}
  {% call statement('main') -%}
    {%- if existing_relation is not none -%}
      {{ get_drop_sql(existing_relation) }};
    {% endif -%}
    {%- if type == 'table' -%}
      {{ create_table_as(False, target_relation, sql) }}
    {%- else -%}
      {{ get_create_view_as_sql(target_relation, sql) }}
    {%- endif -%}
  {%- endcall %}
  {% do create_indexes(target_relation) if type == 'table' %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke(existing_relation, full_refresh_mode=True)) %}
  {% do persist_docs(target_relation, model) %}

  {{ adapter.commit() }}

  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmacro %}
