{#- One of the tables campaigns share (see create_campaign_tables), in the target schema. -#}
{% macro _campaign_table(name) -%}
  {{- return(api.Relation.create(database=target.database, schema=target.schema, identifier=name)) -}}
{%- endmacro %}
