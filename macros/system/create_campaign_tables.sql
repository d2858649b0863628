{#- The tables campaigns share in the target schema, created when missing, never replaced:

    campaign_runs, campaign_deliveries, campaign_suppressions, campaign_events — the delivery log
      that `campaign send` writes and channel models read (suppressions, frequency caps);
    campaign_builds — one row per node of a campaign (model or seed of a loaded file) as last
      built on this target: its relation and the digest of its definition (see record_build).

    A table created by an older version of the package is given the columns added since
    (_campaign_table_added_columns), so that what writes it finds them.

    This package's on-run-start hook runs it, so any dbt command that builds models (a plain
    `dbt build` of an empty warehouse too) finds them before a channel model reads them. -#}
{% macro create_campaign_tables() -%}
  {{ return(adapter.dispatch('create_campaign_tables', 'campaign_orchestration')()) }}
{%- endmacro %}

{% macro default__create_campaign_tables() -%}
  {%- if not execute %}{{ return('') }}{% endif -%}
  {%- do adapter.create_schema(api.Relation.create(database=target.database, schema=target.schema)) -%}
  {%- for name, columns in campaign_orchestration._campaign_table_columns().items() %}
    {%- do run_query("create table if not exists " ~ campaign_orchestration._campaign_table(name) ~ " (" ~ columns ~ ")") %}
  {%- endfor %}
  {%- for name, added in campaign_orchestration._campaign_table_added_columns().items() %}
    {%- set table = campaign_orchestration._campaign_table(name) %}
    {%- set present = adapter.get_columns_in_relation(table) | map(attribute='name') | map('lower') | list %}
    {#- altered only when a column is missing: an alter locks the table, which sends are writing -#}
    {%- for column in added if column.split()[0] not in present %}
      {%- do run_query("alter table " ~ table ~ " add column if not exists " ~ column) %}
      {#- (the statement began a transaction, which dbt would roll back when the hook ends) -#}
      {%- do adapter.commit() %}
    {%- endfor %}
  {%- endfor %}
  {{- return('') -}}
{%- endmacro %}

{#- Spark's tables (parquet, in a Hive metastore) have no constraints and take appends only: the
    shared tables are journals there, and their readers take the latest row of a key — by built_at in
    campaign_builds, by journal_seq (the writer's clock, in nanoseconds) in the tables `campaign`
    writes row by row (runs, deliveries, occurrences). -#}
{% macro spark__create_campaign_tables() -%}
  {%- if not execute %}{{ return('') }}{% endif -%}
  {%- set journals = ['campaign_runs', 'campaign_deliveries', 'campaign_occurrences'] %}
  {%- do run_query("create database if not exists " ~ target.schema) -%}
  {%- for name, columns in campaign_orchestration._campaign_table_columns().items() %}
    {%- set plain = columns.split('primary key (')[0].strip().rstrip(',') | replace(' primary key', '')
          | replace(' not null', '') | replace('varchar', 'string') | replace('"', '`') %}
    {%- set plain = plain ~ (', journal_seq bigint' if name in journals else '') %}
    {%- do run_query("create table if not exists " ~ campaign_orchestration._campaign_table(name) ~ " (" ~ plain ~ ") using parquet") %}
  {%- endfor %}
  {%- set added_columns = campaign_orchestration._campaign_table_added_columns() %}
  {%- for name in journals %}
    {%- do added_columns.update({name: added_columns.get(name, []) + ['journal_seq bigint']}) %}
  {%- endfor %}
  {%- for name, added in added_columns.items() %}
    {%- set table = campaign_orchestration._campaign_table(name) %}
    {%- set present = adapter.get_columns_in_relation(table) | map(attribute='name') | map('lower') | list %}
    {%- for column in added if column.split()[0] not in present %}
      {%- do run_query("alter table " ~ table ~ " add columns (" ~ column | replace('varchar', 'string') ~ ")") %}
    {%- endfor %}
  {%- endfor %}
  {{- return('') -}}
{%- endmacro %}
