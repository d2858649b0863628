{#- A loaded file, typed: every column cast from the seed's text to its declared type, blanks as
    NULL, and `file_row` (the record's position in the file) as the key. -#}
{% macro load_file(seed, columns) -%}
  {{ return(adapter.dispatch('load_file', 'campaign_orchestration')(seed=seed, columns=columns)) }}
{%- endmacro %}

{% macro default__load_file(seed, columns) -%}
select
    cast(raw.file_row as {{ campaign_orchestration._sql_type('integer') }}) as file_row
    {%- for column in columns %},
    cast(nullif(trim(raw.{{ adapter.quote(column[0]) }}), '') as {{ campaign_orchestration._sql_type(column[1]) }}) as {{ adapter.quote(column[0]) }}
    {%- endfor %}
from {{ seed }} as raw
{%- endmacro %}
