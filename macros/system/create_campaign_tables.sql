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


{#- One of the tables above, in the target schema. -#}
{% macro _campaign_table(name) -%}
  {{- return(api.Relation.create(database=target.database, schema=target.schema, identifier=name)) -}}
{%- endmacro %}


{#- Their columns. A delivery is identified by (message_key, occurrence): the message key is a hash
    of campaign, activity, recipient and linked row. -#}
{% macro _campaign_table_columns() -%}
  {{- return({
    'campaign_runs': "run_id varchar primary key, campaign varchar not null, occurrence varchar not null,
        started_at timestamp not null, finished_at timestamp, status varchar not null,
        simulate boolean not null, counts varchar",
    'campaign_deliveries': "campaign varchar not null, activity varchar not null, channel varchar not null,
        occurrence varchar not null, recipient_key varchar not null, per_key varchar,
        message_key varchar not null, address varchar, status varchar not null,
        attempts integer not null, error varchar, sent_at timestamp, run_id varchar, updated_at timestamp,
        primary key (message_key, occurrence)",
    'campaign_suppressions': "address varchar not null, channel varchar not null, reason varchar not null,
        \"at\" timestamp not null",
    'campaign_events': "message_key varchar not null, event varchar not null, \"at\" timestamp not null",
    'campaign_builds': "campaign varchar not null, node varchar not null, relation varchar not null,
        relation_schema varchar not null, relation_name varchar not null, digest varchar not null,
        built_at timestamp not null, invocation_id varchar,
        primary key (campaign, node)",
  }) -}}
{%- endmacro %}
