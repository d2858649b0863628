{#- Whether an address can receive the channel's messages: it matches `pattern` (a string, or a
    mapping adapter type -> string, see _sql), or, for a channel without one, is not blank. A direct
    mail address must also be `complete` (every column non-blank), which the compiler checks on its
    columns. The patterns are the compiler's (campaign_compiler/compile/contract.py). -#}
{% macro _valid_address(sql, pattern=none) -%}
  {%- if pattern is not none -%}
    {{ campaign_orchestration._regex_match(sql, campaign_orchestration._sql(pattern)) }}
  {%- else -%}
    {{ sql }} <> ''
  {%- endif -%}
{%- endmacro %}
