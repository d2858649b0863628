{#- The materialization of a campaign's pass-through outputs and a channel's exclusions and
    recipients (`campaign compile` writes materialized='campaign_view'): the view dbt's `view`
    materialization gives, in one statement where `view` creates an intermediate view and renames
    the old one and the new one (see _replace_relation). Spark's `view` is already one `create or
    replace view`. -#}
{% materialization campaign_view, default %}
  {{ return(campaign_orchestration._replace_relation('view')) }}
{% endmaterialization %}

{% materialization campaign_view, adapter='spark' %}
  {{ return(create_or_replace_view()) }}
{% endmaterialization %}
