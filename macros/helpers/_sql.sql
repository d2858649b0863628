{#- A SQL fragment written by `campaign compile`: a string, a mapping adapter type -> string
    when the warehouses need different SQL (sqlglot generated each), or a list: the conjunction of
    such fragments and of existence tests {exists: true|false, link: a link as _link_joins reads
    it}, each a [NOT] EXISTS (_semi_join). -#}
{% macro _sql(fragment) -%}
  {%- if fragment is mapping -%}
    {%- if target.type not in fragment -%}
      {{ exceptions.raise_compiler_error(
          "campaign_orchestration: this campaign needs SQL that differs between warehouses and has none for adapter '"
          ~ target.type ~ "' (it has: " ~ (fragment.keys() | list | join(', ')) ~ ")") }}
    {%- endif -%}
    {{- return(fragment[target.type]) -}}
  {%- endif -%}
  {%- if fragment is not string and fragment is sequence -%}
    {%- set parts = [] -%}
    {%- for part in fragment -%}
      {%- if part is mapping and 'link' in part -%}
        {%- do parts.append(campaign_orchestration._semi_join(part['link'], part['exists'])) -%}
      {%- else -%}
        {%- do parts.append('(' ~ campaign_orchestration._sql(part) ~ ')') -%}
      {%- endif -%}
    {%- endfor -%}
    {{- return(parts | join('\n  and ')) -}}
  {%- endif -%}
  {{- return(fragment) -}}
{%- endmacro %}
