{#- The warehouse type of a data-model column type (text integer number boolean date timestamp). -#}
{% macro _sql_type(type_name) -%}
  {{ return(adapter.dispatch('_sql_type', 'campaign_orchestration')(type_name)) }}
{%- endmacro %}

{% macro default___sql_type(type_name) -%}
  {%- set types = {'text': 'varchar', 'integer': 'bigint', 'number': 'double precision',
                   'boolean': 'boolean', 'date': 'date', 'timestamp': 'timestamp'} -%}
  {{- return(types[type_name]) -}}
{%- endmacro %}

{% macro postgres___sql_type(type_name) -%}
  {%- set types = {'text': 'text', 'integer': 'bigint', 'number': 'numeric',
                   'boolean': 'boolean', 'date': 'date', 'timestamp': 'timestamp'} -%}
  {{- return(types[type_name]) -}}
{%- endmacro %}

{% macro duckdb___sql_type(type_name) -%}
  {%- set types = {'text': 'varchar', 'integer': 'bigint', 'number': 'double',
                   'boolean': 'boolean', 'date': 'date', 'timestamp': 'timestamp'} -%}
  {{- return(types[type_name]) -}}
{%- endmacro %}

{% macro spark___sql_type(type_name) -%}
  {%- set types = {'text': 'string', 'integer': 'bigint', 'number': 'double',
                   'boolean': 'boolean', 'date': 'date', 'timestamp': 'timestamp'} -%}
  {{- return(types[type_name]) -}}
{%- endmacro %}
