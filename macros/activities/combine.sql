{#- union: keys in any input, each row from the first input that has it; intersection: keys in
    every input; exclusion: keys of the first input in none of the others. Rows come from the
    first input. output 'complement': first-input rows not in `result` (the out model). -#}
{% macro combine(mode, inputs, key, columns, output='out', result=none) -%}
  {{ return(adapter.dispatch('combine', 'campaign_orchestration')(
      mode=mode, inputs=inputs, key=key, columns=columns, output=output, result=result)) }}
{%- endmacro %}

{% macro default__combine(mode, inputs, key, columns, output, result) -%}
  {%- if output == 'complement' -%}
{{ campaign_orchestration._anti_join(inputs[0], [result], key, columns) }}
  {%- elif mode == 'union' -%}
{{ campaign_orchestration._union_first(inputs, key, columns) }}
  {%- else -%}
select {{ campaign_orchestration._columns('wt', columns) }}
from {{ inputs[0] }} as wt
    {%- for other in inputs[1:] %}
{{ "where" if loop.first else "  and" }} {{ "not " if mode == 'exclusion' }}exists (
    select 1 from {{ other }} as other
    where other.{{ adapter.quote(key) }} = wt.{{ adapter.quote(key) }}
)
    {%- endfor %}
  {%- endif %}
{%- endmacro %}
