{#- The columns of the tables campaigns share (see create_campaign_tables), by table. A delivery
    is identified by (message_key, occurrence): the message key is a hash of campaign, activity,
    recipient and linked row; message_id is the id the message carried, which events name it by.
    An event is identified by event_id, a hash of message_id, event, at and url. Columns added to a
    table after its first version are listed in _campaign_table_added_columns too. -#}
{% macro _campaign_table_columns() -%}
  {{- return({
    'campaign_runs': "run_id varchar primary key, campaign varchar not null, occurrence varchar not null,
        started_at timestamp not null, finished_at timestamp, status varchar not null,
        simulate boolean not null, counts varchar",
    'campaign_deliveries': "campaign varchar not null, activity varchar not null, channel varchar not null,
        occurrence varchar not null, recipient_key varchar not null, per_key varchar,
        message_key varchar not null, message_id varchar, address varchar, status varchar not null,
        attempts integer not null, error varchar, sent_at timestamp, run_id varchar, updated_at timestamp,
        primary key (message_key, occurrence)",
    'campaign_suppressions': "address varchar not null, channel varchar not null, reason varchar not null,
        \"at\" timestamp not null",
    'campaign_events': "message_id varchar not null, event varchar not null, \"at\" timestamp not null,
        url varchar, reason varchar, campaign varchar not null, activity varchar not null,
        channel varchar not null, occurrence varchar not null, message_key varchar not null,
        loaded_at timestamp not null, event_id varchar primary key",
    'campaign_occurrences': "campaign varchar not null, occurrence varchar not null, step varchar not null,
        due_at timestamp not null, status varchar not null, entered integer, started_at timestamp,
        finished_at timestamp, watermark timestamp, run_id varchar, detail varchar, counts varchar,
        primary key (campaign, occurrence, step)",
    'campaign_builds': "campaign varchar not null, node varchar not null, relation varchar not null,
        relation_schema varchar not null, relation_name varchar not null, digest varchar not null,
        built_at timestamp not null, invocation_id varchar, occurrence varchar,
        primary key (campaign, node)",
  }) -}}
{%- endmacro %}
