{#- The tables campaigns share in the target schema, created when missing, never replaced:

    campaign_runs, campaign_deliveries, campaign_suppressions, campaign_events — the delivery log
      that `campaign send` writes and channel models read (suppressions, frequency caps);
    campaign_builds — one row per node of a campaign (model or seed of a loaded file) as last
      built on this target: its relation and the digest of its definition (see record_build).

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
  {{- return('') -}}
{%- endmacro %}
