{#- The delivery log `deliveries` as a relation with one row a message, its state: the table itself,
    or, where the shared tables are journals (Spark), the latest row of each message (by journal_seq)
    unless that row says the message was forgotten (see campaign_compiler/send/log.py). -#}
{% macro _delivery_log(deliveries) -%}
  {{ return(adapter.dispatch('_delivery_log', 'campaign_orchestration')(deliveries)) }}
{%- endmacro %}

{% macro default___delivery_log(deliveries) -%}
{{ deliveries }}
{%- endmacro %}

{% macro spark___delivery_log(deliveries) -%}
(select * from (
    select journal.*, row_number() over (
        partition by journal.message_key, journal.occurrence order by journal.journal_seq desc) as _campaign_latest
    from {{ deliveries }} as journal
) as latest where latest._campaign_latest = 1 and latest.status <> 'forgotten')
{%- endmacro %}
