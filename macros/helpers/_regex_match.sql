{#- Whether `sql` matches the regular expression `pattern` (written into a string literal as is). -#}
{% macro _regex_match(sql, pattern) -%}
  {{ return(adapter.dispatch('_regex_match', 'campaign_orchestration')(sql, pattern)) }}
{%- endmacro %}

{% macro default___regex_match(sql, pattern) -%}
regexp_like({{ sql }}, '{{ pattern }}')
{%- endmacro %}

{% macro postgres___regex_match(sql, pattern) -%}
({{ sql }} ~ '{{ pattern }}')
{%- endmacro %}

{% macro duckdb___regex_match(sql, pattern) -%}
regexp_matches({{ sql }}, '{{ pattern }}')
{%- endmacro %}

{#- Spark reads backslashes in a string literal as escapes: each is doubled to reach the regex. -#}
{% macro spark___regex_match(sql, pattern) -%}
({{ sql }} rlike '{{ pattern | replace("\\", "\\\\") }}')
{%- endmacro %}
