"""SQL and Jinja injection: rejected before anything runs, or kept as plain data; tables untouched."""

from __future__ import annotations

import pytest
from conftest import Project, warehouse_params
from validation_helpers import DATA_MODEL

pytestmark = pytest.mark.slow

BOBBY = "Robert'); drop table profiles; --"
JINJA = "{{ run_query('drop table profiles') }}"

PROFILES_CSV = f"""\
profile_id,first_name,email,phone,country,loyalty_tier,email_opt_in,created_at
1,Anna,anna@example.com,,FR,gold,true,2020-01-01 00:00:00
2,"{BOBBY.replace('"', '""')}",bobby@example.com,,FR,none,true,2020-01-01 00:00:00
3,"{JINJA}",jinja@example.com,,DE,none,false,2020-01-01 00:00:00
"""

BASELINE = """\
campaign: baseline
activities:
  everyone: {type: build_audience}
"""

# Each must be rejected by validation: exit 2, nothing compiled, nothing run.
ATTEMPTS = {
    "stacked-statement": 'where: "1 = 1; drop table profiles"',
    "subquery": "where: \"country = 'FR' or profile_id in (select profile_id from bookings)\"",
    "unterminated-literal": 'where: "\'; drop table profiles; --"',
    "closing-parenthesis": "where: \"country = 'FR') or (1 = 1\"",
    "function-running-sql": "where: \"query_to_xml('drop table profiles', true, false, '') is not null\"",
    "sleep": 'where: "pg_sleep(5) is null"',
    "read-a-file": "where: \"read_text('/etc/passwd') is not null\"",
}
SPLIT_ATTEMPTS = {
    "order-by-stacked": 'limit: {count: 1, order_by: "created_at; drop table profiles"}',
    "order-by-limit-clause": 'limit: {count: 1, order_by: "created_at limit 1"}',
    "order-by-union": 'limit: {count: 1, order_by: "created_at union select 1"}',
}


def attempt(project: Project, name: str, body: str) -> None:
    project.write(f"campaigns/{name}.yml", body)
    result = project.run("count", name, "--target", project.target)
    assert result.code == 2, result.stderr
    assert result.errors and "Traceback" not in result.stderr
    assert not (project.root / "models" / "campaigns" / name).exists()


@pytest.fixture(scope="module", params=warehouse_params())
def loaded(request, tmp_path_factory):
    if request.param == "postgres":
        request.getfixturevalue("postgres")
    project = Project(tmp_path_factory.mktemp(f"injection_{request.param}") / "project")
    project.target = request.param
    project.write("campaign_project.yml", DATA_MODEL)
    project.write("seeds/profiles.csv", PROFILES_CSV)
    project.write(
        "seeds/bookings.csv",
        "booking_id,profile_id,hotel_id,status,amount,checkin_date\n1,1,1,confirmed,10.5,2026-01-01\n",
    )
    project.write("seeds/hotels.csv", "hotel_id,city\n1,Paris\n")
    project.write("campaigns/baseline.yml", BASELINE)
    assert project.count("baseline", project.target)["counts"] == {"everyone": 3}
    return project


def tables(project: Project) -> list[tuple]:
    schema = project.schema_of(project.target)
    return sorted(
        project.query(
            project.target,
            f"""
        select table_name from information_schema.tables where table_schema = '{schema}'""",
        )
    )


def untouched(project: Project, before: list[tuple]) -> None:
    assert tables(project) == before
    assert project.scalar(project.target, "select count(*) from profiles") == 3


@pytest.mark.parametrize("name", ATTEMPTS)
def test_injection_in_a_condition_is_rejected(loaded, name):
    before = tables(loaded)
    campaign = name.replace("-", "_")
    attempt(
        loaded, campaign, f"campaign: {campaign}\nactivities:\n  a:\n    type: build_audience\n    {ATTEMPTS[name]}\n"
    )
    untouched(loaded, before)


@pytest.mark.parametrize("name", SPLIT_ATTEMPTS)
def test_injection_in_an_order_by_is_rejected(loaded, name):
    before = tables(loaded)
    campaign = name.replace("-", "_")
    attempt(
        loaded,
        campaign,
        f"""\
campaign: {campaign}
activities:
  a: {{type: build_audience}}
  s:
    type: split
    input: a
    subsets: [{{name: one, {SPLIT_ATTEMPTS[name]}}}]
""",
    )
    untouched(loaded, before)


@pytest.mark.parametrize(
    "body",
    [
        'type: deduplication\n    input: a\n    keys: ["email); drop table profiles; --"]',
        'type: enrichment\n    input: a\n    add: {n: "(select count(*) from bookings)"}',
        'type: enrichment\n    input: a\n    add: {"n\\"; drop table profiles; --": "1"}',
        'type: change_dimension\n    input: a\n    link: "bookings; drop table profiles"',
        'type: save_audience\n    input: a\n    name: "x; drop table profiles"',
    ],
    ids=["dedup-key", "enrichment-subquery", "enrichment-name", "link-name", "audience-name"],
)
def test_injection_in_names_and_expressions_is_rejected(loaded, body):
    before = tables(loaded)
    attempt(loaded, "names", f"campaign: names\nactivities:\n  a: {{type: build_audience}}\n  b:\n    {body}\n")
    untouched(loaded, before)


def test_a_file_outside_the_project_is_rejected(loaded):
    attempt(
        loaded,
        "outside",
        """\
campaign: outside
activities:
  f: {type: load_file, path: ../../../../etc/passwd, columns: {root: text}}
""",
    )


def test_sql_and_jinja_in_string_literals_stay_data(loaded):
    before = tables(loaded)
    bobby, jinja = BOBBY.replace("'", "''"), JINJA.replace("'", "''")
    loaded.write(
        "campaigns/literals.yml",
        f"""\
campaign: literals
activities:
  bobby:
    type: build_audience
    where: "first_name = '{bobby}'"
  jinja:
    type: build_audience
    where: "first_name = '{jinja}' or email = '{{{{ this }}}}'"
  comment:
    type: build_audience
    where: "first_name = 'Anna' -- */ ; drop table profiles"
""",
    )
    counts = loaded.count("literals", loaded.target)["counts"]
    assert counts == {"bobby": 1, "jinja": 1, "comment": 1}
    assert loaded.scalar(loaded.target, "select profile_id from literals__bobby") == 2
    assert loaded.scalar(loaded.target, "select profile_id from literals__jinja") == 3
    new = {("literals__bobby",), ("literals__jinja",), ("literals__comment",)}
    assert set(tables(loaded)) == set(before) | new
    assert loaded.scalar(loaded.target, "select count(*) from profiles") == 3
