{#- The columns added to the tables campaigns share after their first version, by table: a table
    created before them is given them by create_campaign_tables. They are in _campaign_table_columns
    too, with the constraints an existing table cannot be given (not null, primary key): the loaders
    that write them check what those would. -#}
{% macro _campaign_table_added_columns() -%}
  {{- return({
    'campaign_deliveries': ["message_id varchar"],
    'campaign_events': ["message_id varchar", "url varchar", "reason varchar", "campaign varchar", "activity varchar",
        "channel varchar", "occurrence varchar", "loaded_at timestamp", "event_id varchar"],
    'campaign_builds': ["occurrence varchar"],
  }) -}}
{%- endmacro %}
