{#- One of the tables campaigns share (see create_campaign_tables), in the target schema. -#}
{% macro _campaign_table(name) -%}
  {{- return(api.Relation.create(database=(target.database if target.database is defined else none), schema=target.schema, identifier=name)) -}}
{%- endmacro %}
