{#- A post-hook of every model and seed `campaign compile` writes: records on this target, in the
    same transaction as the node itself, that `campaign` built `this` from a definition whose digest
    is `digest`, for the occurrence `var('campaign_occurrence')` (`once` unless `campaign` gives it).
    `campaign send` compares those digests with the campaign as it stands, and refuses a build that is
    missing, stale, built for another occurrence, or whose tables were built before their inputs. -#}
{% macro record_build(campaign, digest) -%}
  {{ return(adapter.dispatch('record_build', 'campaign_orchestration')(campaign, digest)) }}
{%- endmacro %}

{% macro default__record_build(campaign, digest) -%}
  {%- set builds = campaign_orchestration._campaign_table('campaign_builds') -%}
  {%- set node = model.name -%}
delete from {{ builds }} where campaign = '{{ campaign }}' and node = '{{ node }}';
insert into {{ builds }} (campaign, node, relation, relation_schema, relation_name, digest, built_at, invocation_id,
                          occurrence)
values ('{{ campaign }}', '{{ node }}', '{{ this | replace("'", "''") }}', '{{ this.schema }}', '{{ this.identifier }}',
        '{{ digest }}', current_timestamp, '{{ invocation_id }}',
        '{{ var('campaign_occurrence', 'once') | replace("'", "''") }}')
{%- endmacro %}

{#- Spark's tables take appends only: the latest row of a node (by built_at) is its build. -#}
{% macro spark__record_build(campaign, digest) -%}
  {%- set builds = campaign_orchestration._campaign_table('campaign_builds') -%}
insert into {{ builds }} (campaign, node, relation, relation_schema, relation_name, digest, built_at, invocation_id,
                          occurrence)
values ('{{ campaign }}', '{{ model.name }}', '{{ this | replace("'", "\\'") }}', '{{ this.schema }}', '{{ this.identifier }}',
        '{{ digest }}', cast(current_timestamp() as timestamp), '{{ invocation_id }}',
        '{{ var('campaign_occurrence', 'once') | replace("'", "\\'") }}')
{%- endmacro %}
