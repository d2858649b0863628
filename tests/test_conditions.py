"""Conditions parsed in the project's dialect and generated for each warehouse."""

from __future__ import annotations

import pytest
from validation_helpers import with_data_model

from campaign_compiler.compile.activities.base import first_holding
from campaign_compiler.compile.conditions import Conjunction, Query, Scope, semi_joins
from campaign_compiler.compile.emit import jinja_string, literal
from campaign_compiler.errors import Diagnostics
from campaign_compiler.workspace import Workspace
from campaign_compiler.yamlsrc import Source


@pytest.fixture
def model(project):
    with_data_model(project)
    diagnostics = Diagnostics()
    loaded = Workspace(project.root).data_model(diagnostics)
    assert not diagnostics, diagnostics.sorted()
    return loaded


def compile_condition(model, condition, working=None):
    diagnostics = Diagnostics()
    query = Query(model, diagnostics)
    scope = Scope.of(model.entities["profiles"], working=working or {"profile_id": "integer"})
    source = Source(path=model.source.path, text="", data=None)
    expression = query.condition(source, ("where",), condition, scope)
    assert not diagnostics, diagnostics.sorted()
    return expression, query


# (condition written in postgres, generated for duckdb, generated for postgres)
GENERATION = [
    ("country = 'FR'", "dim.country = 'FR'", "dim.country = 'FR'"),
    (
        "Country = 'FR' AND LOYALTY_TIER in ('gold', 'platinum')",
        "dim.country = 'FR' AND dim.loyalty_tier IN ('gold', 'platinum')",
        "dim.country = 'FR' AND dim.loyalty_tier IN ('gold', 'platinum')",
    ),
    (
        "email ilike '%@example.com' and email_opt_in",
        "dim.email ILIKE '%@example.com' AND dim.email_opt_in",
        "dim.email ILIKE '%@example.com' AND dim.email_opt_in",
    ),
    (
        "created_at > current_date - interval '30 days'",
        "dim.created_at > CURRENT_DATE - INTERVAL '30' DAYS",
        "dim.created_at > CURRENT_DATE - INTERVAL '30 DAYS'",
    ),
    ("phone ~ '^\\+33'", "REGEXP_MATCHES(dim.phone, '^\\+33')", "dim.phone ~ '^\\+33'"),
    (
        "to_char(created_at, 'YYYY') = '2024'",
        "STRFTIME(dim.created_at, '%Y') = '2024'",
        "TO_CHAR(dim.created_at, 'YYYY') = '2024'",
    ),
    ("first_name = 'O''Brien'", "dim.first_name = 'O''Brien'", "dim.first_name = 'O''Brien'"),
    ("profile_id::text like '1%'", "CAST(wt.profile_id AS TEXT) LIKE '1%'", "CAST(wt.profile_id AS TEXT) LIKE '1%'"),
    (
        "case when loyalty_tier = 'gold' then true else email_opt_in end",
        "CASE WHEN dim.loyalty_tier = 'gold' THEN TRUE ELSE dim.email_opt_in END",
        "CASE WHEN dim.loyalty_tier = 'gold' THEN TRUE ELSE dim.email_opt_in END",
    ),
    (
        "created_at between date '2024-01-01' and date '2024-12-31'",
        "dim.created_at BETWEEN CAST('2024-01-01' AS DATE) AND CAST('2024-12-31' AS DATE)",
        "dim.created_at BETWEEN CAST('2024-01-01' AS DATE) AND CAST('2024-12-31' AS DATE)",
    ),
    ("not (email is null) -- a comment */ drop table x", "NOT (dim.email IS NULL)", "NOT (dim.email IS NULL)"),
    # integer division truncates in PostgreSQL, where the condition is written: so it must in DuckDB
    (
        "profile_id / 2 = 1 and profile_id / 2.0 > 0",
        "wt.profile_id // 2 = 1 AND wt.profile_id / 2.0 > 0",
        "DIV(wt.profile_id, 2) = 1 AND wt.profile_id / 2.0 > 0",
    ),
]


@pytest.mark.parametrize("condition, duckdb, postgres", GENERATION)
def test_condition_is_qualified_and_generated_per_dialect(model, condition, duckdb, postgres):
    expression, query = compile_condition(model, condition)
    assert expression.sql("duckdb") == duckdb
    assert expression.sql("postgres") == postgres
    assert query.uses_entity == ("dim." in duckdb)


# (condition written in postgres, generated for spark): Spark reads backslashes in literals as escapes
SPARK_GENERATION = [
    ("phone ~ '^\\+33'", "dim.phone RLIKE '^\\\\+33'"),
    ("first_name = 'O''Brien'", "dim.first_name = 'O\\'Brien'"),
    ("profile_id::text like '1%'", "CAST(wt.profile_id AS STRING) LIKE '1%'"),
    ("profile_id / 2 = 1", "wt.profile_id DIV 2 = 1"),
    ("created_at > current_date - interval '30 days'", "dim.created_at > CURRENT_DATE - INTERVAL '30' DAYS"),
    ("email ilike '%@example.com'", "dim.email ILIKE '%@example.com'"),
]


@pytest.mark.parametrize("condition, spark", SPARK_GENERATION)
def test_condition_is_generated_for_spark(model, condition, spark):
    expression, _ = compile_condition(model, condition)
    assert expression.sql("spark") == spark


def test_working_table_columns_win_over_entity_columns(model):
    expression, query = compile_condition(
        model, "nb_stays > 2 and profile_id > 10", working={"profile_id": "integer", "nb_stays": "integer"}
    )
    assert expression.sql("postgres") == "wt.nb_stays > 2 AND wt.profile_id > 10"
    assert not query.uses_entity  # no join with the entity is needed


def test_boolean_combinators(model):
    expression, _ = compile_condition(
        model, {"any": ["country = 'FR'", {"not": {"all": ["country = 'DE'", "email is null"]}}]}
    )
    assert expression.sql("postgres") == "(dim.country = 'FR' OR NOT ((dim.country = 'DE' AND dim.email IS NULL)))"


def test_link_condition_without_having_is_an_existence_join(model):
    expression, query = compile_condition(model, {"link": "bookings", "where": "status = 'confirmed'"})
    assert expression.sql("postgres") == "NOT (link1.k1 IS NULL)"
    (link,) = query.links
    assert (link.kind, link.entity, link.where.sql("postgres")) == (
        "exists",
        "bookings",
        "link1_row.status = 'confirmed'",
    )
    assert [(outer.sql("postgres"), column) for outer, column in link.on] == [("wt.profile_id", "profile_id")]


def test_having_is_evaluated_over_zero_rows_when_nothing_matches(model):
    expression, query = compile_condition(model, {"link": "bookings", "having": "count(*) <= 1"})
    assert expression.sql("postgres") == "CASE WHEN link1.k1 IS NULL THEN link1_empty.v1 ELSE link1.v1 END"
    assert query.links[0].columns[0][1].sql("postgres") == "COUNT(*) <= 1"


@pytest.mark.parametrize(
    "having, expected",
    [
        ("count(*) = 0", "link1.k1 IS NULL"),
        ("(0 = COUNT(*))", "link1.k1 IS NULL"),
        ("count(*) < 1", "link1.k1 IS NULL"),
        ("count(*) > 0", "NOT (link1.k1 IS NULL)"),
        ("1 <= count(*)", "NOT (link1.k1 IS NULL)"),
        ("count(*) <> 0", "NOT (link1.k1 IS NULL)"),
    ],
)
def test_a_having_that_only_asks_whether_rows_exist_is_an_anti_or_existence_join(model, having, expected):
    expression, query = compile_condition(
        model, {"link": "bookings", "where": "status = 'confirmed'", "having": having}
    )
    assert expression.sql("postgres") == expected
    (link,) = query.links
    assert (link.kind, link.columns, link.where.sql("postgres")) == ("exists", [], "link1_row.status = 'confirmed'")


def test_an_existence_test_a_where_requires_is_a_semi_or_anti_join_without_its_grouping_join(model):
    expression, query = compile_condition(
        model,
        {
            "all": [
                "country = 'FR'",
                {"link": "bookings", "having": "count(*) = 0"},
                {"link": "bookings", "where": "status = 'confirmed'"},
            ]
        },
    )
    where, links = semi_joins(expression, query.links)
    assert links == []
    assert isinstance(where, Conjunction) and where.rest.sql("postgres") == "dim.country = 'FR'"
    assert [(link.entity, exists) for link, exists in where.tests] == [("bookings", False), ("bookings", True)]
    text = literal(where)
    assert '"exists": false' in text and '"exists": true' in text and "k1 IS NULL" not in text


def test_a_split_subset_excluding_an_earlier_existence_test_is_an_anti_join(model):
    """COALESCE(..., FALSE) and NOT around a test that is never NULL change nothing."""
    first, query = compile_condition(model, {"link": "bookings", "where": "status = 'confirmed'"})
    where, links = semi_joins(first_holding([first, None], 1), query.links)
    assert (links, where.rest) == ([], None)
    assert [(link.entity, exists) for link, exists in where.tests] == [("bookings", False)]


@pytest.mark.parametrize(
    "condition",
    [
        {"any": ["country = 'FR'", {"link": "bookings", "having": "count(*) = 0"}]},
        {"not": {"all": ["country = 'FR'", {"link": "bookings"}]}},
        {"link": "bookings", "having": "count(*) > 2"},
    ],
)
def test_an_existence_test_not_required_by_the_where_keeps_its_join(model, condition):
    """PostgreSQL runs an EXISTS under OR once per row: the grouped LEFT JOIN is faster there."""
    expression, query = compile_condition(model, condition)
    where, links = semi_joins(expression, query.links)
    assert (where, links) == (expression, query.links)


def test_a_join_another_part_of_the_where_reads_is_kept(model):
    expression, query = compile_condition(
        model,
        {
            "all": [
                {"link": "bookings", "where": "status = 'x'"},
                {"any": ["country = 'FR'", {"link": "bookings", "where": "status = 'x'"}]},
            ]
        },
    )
    where, links = semi_joins(expression, query.links)
    assert len(where.tests) == 1 and links == query.links and "link1.k1" in where.rest.sql("postgres")


def test_aggregates_over_one_link_with_different_wheres_share_one_scan(model):
    _, query = compile_condition(
        model,
        {
            "all": [
                {"link": "bookings", "where": "status = 'confirmed'", "having": "sum(amount) > 10"},
                {"link": "bookings", "where": "status = 'completed'", "having": "count(*) >= 2"},
            ]
        },
    )
    (link,) = query.links
    assert link.where.sql("postgres") == "(link1_row.status = 'confirmed') OR (link1_row.status = 'completed')"
    assert [column.sql("postgres") for _, column in link.columns] == [
        "SUM(link1_row.amount) FILTER(WHERE link1_row.status = 'confirmed') > 10",
        "COUNT(*) FILTER(WHERE link1_row.status = 'completed') >= 2",
    ]


def test_nested_link_conditions_join_inside_their_link(model):
    _, query = compile_condition(model, {"link": "bookings", "where": {"link": "hotel", "where": "city = 'Paris'"}})
    (bookings,) = query.links
    (hotel,) = bookings.links
    assert hotel.where.sql("postgres") == "link2_row.city = 'Paris'"
    assert [(o.sql("postgres"), c) for o, c in hotel.on] == [("link1_row.hotel_id", "hotel_id")]


def test_identical_link_joins_are_shared(model):
    _, query = compile_condition(
        model,
        {
            "all": [
                {"link": "bookings", "where": "status = 'x'", "having": "count(*) > 1"},
                {"link": "bookings", "where": "status = 'x'", "having": "sum(amount) > 10"},
            ]
        },
    )
    assert len(query.links) == 1
    assert [c.sql("postgres") for _, c in query.links[0].columns] == ["COUNT(*) > 1", "SUM(link1_row.amount) > 10"]


@pytest.mark.parametrize(
    "text",
    [
        "first_name = '{{ run_query(\"drop table profiles\") }}'",
        'a "quoted" \\ backslash\nand newline {% raw %} {# #} é ü 中',
    ],
)
def test_jinja_string_literal_round_trips_without_rendering(text):
    from jinja2 import Environment

    rendered = Environment().from_string("{{ " + jinja_string(text) + " }}").render()
    assert rendered == text
