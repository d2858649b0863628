"""profiles.yml read without dbt gives exactly what dbt's own reader gives, or leaves it to dbt.

Each case is a profile, an environment and a target: what project.profile reads is compared with
what dbt reads (dbt.config.profile, as dbt build runs it), field by field; a profile it does not
handle, or one dbt refuses, must come back None (the caller then asks dbt, which words the error).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from argparse import Namespace
from pathlib import Path

import pytest

from campaign_compiler.project.profile import read_profile

REPO = Path(__file__).resolve().parents[1]

PG = """\
type: postgres
host: "{{ env_var('PGHOST', '127.0.0.1') }}"
port: "{{ env_var('PGPORT', '5432') | as_number }}"
user: "{{ env_var('PGUSER', 'postgres') }}"
password: "{{ env_var('PGPASSWORD', '') }}"
dbname: "{{ env_var('PGDATABASE', 'postgres') }}"
schema: "{{ env_var('CAMPAIGN_SCHEMA', 'hotel_demo') }}"
"""

# (id, the target's lines, environment, target given, read here?)
CASES = [
    ("duckdb file", "type: duckdb\npath: target/warehouse.duckdb\nthreads: 4", {}, None, True),
    ("duckdb in memory", "type: duckdb\nschema: crm", {}, None, True),
    ("duckdb next to profiles.yml", 'type: duckdb\npath: "{{ flags.PROFILES_DIR }}/demo.duckdb"', {}, None, True),
    ("env_var default", "type: duckdb\npath: \"{{ env_var('DB', 'a.duckdb') }}\"", {}, None, True),
    ("env_var set", "type: duckdb\npath: \"{{ env_var('DB', 'a.duckdb') }}\"", {"DB": "b.duckdb"}, None, True),
    ("whitespace control", "type: duckdb\npath: \"x/ {{- env_var('D', 'a') -}} .duckdb\"", {}, None, True),
    ("a Jinja comment", 'type: duckdb\npath: "a{# note #}b.duckdb"', {}, None, True),
    ("a block scalar", "type: duckdb\npath: |\n  c.duckdb\n", {}, None, True),
    ("a date as schema", "type: duckdb\nschema: 2024-01-31", {}, None, True),
    ("database named as its file", "type: duckdb\npath: x/w.duckdb\ndatabase: w", {}, None, True),
    ("database not its file", "type: duckdb\npath: x/w.duckdb\ndatabase: v", {}, None, False),
    ("MotherDuck", "type: duckdb\npath: md:my_db", {}, None, False),
    ("DuckDB extensions", "type: duckdb\npath: a.duckdb\nextensions: [httpfs]", {}, None, False),
    ("postgres, defaults", PG + "threads: 4", {}, None, True),
    ("postgres, environment", PG, {"PGPORT": "5433", "PGHOST": "db", "CAMPAIGN_SCHEMA": "s1"}, None, True),
    ("postgres aliases", PG.replace("password:", "pass:"), {}, None, True),
    ("postgres, a port as text", PG.replace(" | as_number", ""), {}, None, False),
    ("postgres, as_native port", PG.replace("as_number", "as_native"), {}, None, True),
    ("postgres, as_text port", PG.replace("as_number", "as_text"), {}, None, False),
    ("postgres, a bad number", PG, {"PGPORT": "x"}, None, False),
    ("postgres, port out of range", PG, {"PGPORT": "70000"}, None, False),
    ("postgres, dbname and database", PG + "database: other", {}, None, False),
    ("postgres, a missing field", PG.replace("user:", "# user:"), {}, None, False),
    ("postgres, a number as user", PG.replace("\"{{ env_var('PGUSER', 'postgres') }}\"", "123"), {}, None, False),
    ("postgres, sslmode", PG + "sslmode: require", {}, None, False),
    ("postgres, connect_timeout", PG + "connect_timeout: 3", {}, None, True),
    (
        "a secret password",
        PG.replace("env_var('PGPASSWORD', '')", "env_var('DBT_ENV_SECRET_PW')"),
        {"DBT_ENV_SECRET_PW": "s3cr{{t}}"},
        None,
        True,
    ),
    (
        "a secret inside text",
        PG.replace("env_var('PGPASSWORD', '')", "env_var('DBT_ENV_SECRET_PW') }}-{{ env_var('X', 'y')"),
        {"DBT_ENV_SECRET_PW": "pw"},
        None,
        True,
    ),
    ("a secret's name as text", PG, {"PGPASSWORD": "DBT_ENV_SECRET_X"}, None, False),
    ("a missing env_var", "type: duckdb\npath: \"{{ env_var('NOPE') }}\"", {}, None, False),
    ("threads from the environment", "type: duckdb\nthreads: \"{{ env_var('T', '2') | as_number }}\"", {}, None, True),
    ("threads as text", 'type: duckdb\nthreads: "4"', {}, None, False),
    ("other Jinja", "type: duckdb\npath: \"{{ var('p', 'a.duckdb') }}\"", {}, None, False),
    ("a Jinja constant", "type: duckdb\npath: \"{{ 'a.duckdb' }}\"", {}, None, False),
    ("a Jinja statement", 'type: duckdb\npath: "{% if true %}a.duckdb{% endif %}"', {}, None, False),
    ("broken Jinja", 'type: duckdb\npath: "{{ a.duckdb"', {}, None, False),
    ("Spark", "type: spark\nmethod: session\nhost: NA\nschema: s", {}, None, False),
    ("no type", "path: a.duckdb", {}, None, False),
    ("a target given", "type: duckdb\npath: a.duckdb", {}, "other", True),
    ("an unknown target", "type: duckdb\npath: a.duckdb", {}, "nope", False),
]


def write_profiles(root: Path, outputs: str, default_target: str = "main") -> None:
    target = f"  target: {default_target}\n" if default_target else ""
    body = textwrap.indent(outputs.rstrip("\n"), "      ") + "\n"
    text = f"p:\n{target}  outputs:\n    main:\n{body}    other:\n      type: duckdb\n      path: o.duckdb\n"
    (root / "profiles.yml").write_text(text)


def dbt_reads(root: Path, target: str | None, env: dict):
    """dbt's profile (or its exception), read as `dbt build --profiles-dir root` reads it."""
    from dbt.config.profile import Profile
    from dbt.config.profile import read_profile as dbt_read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    set_from_args(Namespace(PROFILES_DIR=str(root)), None)
    set_invocation_context(env)
    try:
        return Profile.from_raw_profiles(dbt_read_profile(str(root)), "p", ProfileRenderer({}), target_override=target)
    except Exception as exc:  # noqa: BLE001 - any refusal of dbt's
        return exc


@pytest.mark.parametrize(("outputs", "env", "target", "handled"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_profile_reads_as_dbt_reads_it(tmp_path, outputs, env, target, handled):
    write_profiles(tmp_path, outputs)
    ours = read_profile(tmp_path, "p", target, env)
    theirs = dbt_reads(tmp_path, target, env)
    assert (ours is not None) == handled, theirs
    if ours is None:
        return
    assert not isinstance(theirs, Exception), theirs
    assert (ours.target_name, ours.threads) == (theirs.target_name, theirs.threads)
    for field in dataclasses.fields(ours.credentials):
        assert getattr(ours.credentials, field.name) == getattr(theirs.credentials, field.name), field.name


@pytest.mark.parametrize(
    ("profile", "env", "read"),
    [
        ("target: \"{{ env_var('T', 'main') }}\"", {"T": "other"}, "other"),
        ("target: \"{{ env_var('T', 'main') }}\"", {}, "main"),
        ("", {}, None),  # no target: dbt's `default`, absent here
    ],
)
def test_the_default_target_is_rendered_as_dbt_renders_it(tmp_path, profile, env, read):
    write_profiles(tmp_path, "type: duckdb\npath: a.duckdb", default_target="")
    text = (tmp_path / "profiles.yml").read_text().replace("p:\n", f"p:\n  {profile}\n" if profile else "p:\n")
    (tmp_path / "profiles.yml").write_text(text)
    ours = read_profile(tmp_path, "p", None, env)
    theirs = dbt_reads(tmp_path, None, env)
    assert (ours.target_name if ours else None) == read
    assert (theirs.target_name if not isinstance(theirs, Exception) else None) == read


def test_dbt_target_and_dbt_profile_choose_as_in_dbt(tmp_path, monkeypatch):
    from campaign_compiler.project.dbt import DbtProject
    from campaign_compiler.project.target import DbtTarget, load_profile

    (tmp_path / "dbt_project.yml").write_text("name: q\nprofile: q\n")
    write_profiles(tmp_path, "type: duckdb\npath: a.duckdb")
    where = DbtTarget(DbtProject.load(tmp_path), tmp_path)
    monkeypatch.setenv("DBT_PROFILE", "p")
    assert load_profile(where).target_name == "main"
    monkeypatch.setenv("DBT_TARGET", "other")
    assert load_profile(where).credentials.path == "o.duckdb"
    assert load_profile(DbtTarget(where.project, tmp_path, "main")).credentials.path == "a.duckdb"  # --target first


def test_reading_a_profile_does_not_import_dbt(tmp_path):
    """What lets `status` and `send` start without dbt's second of imports."""
    (tmp_path / "dbt_project.yml").write_text("name: p\nprofile: p\n")
    write_profiles(tmp_path, "type: duckdb\npath: \"{{ flags.PROFILES_DIR }}/{{ env_var('DB', 'a') }}.duckdb\"")
    code = (
        "import sys; from pathlib import Path\n"
        "from campaign_compiler.project.dbt import DbtProject\n"
        "from campaign_compiler.project.target import DbtTarget, connect\n"
        f"root = Path({str(tmp_path)!r})\n"
        "with connect(DbtTarget(DbtProject.load(root), root)) as warehouse:\n"
        "    print(warehouse.query('select 1')[0][0], (root / 'a.duckdb').exists())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dbt', 'dbt_common', 'agate'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1 True", "[]"]


def test_a_profile_beyond_the_compilers_limits_is_left_to_dbt(tmp_path):
    """Five lines whose lists each repeat the one above ten times hold 111,111 values once expanded."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for name, above in zip("bcde", "abcd"):
        lines.append(f"{name}: &{name} [{', '.join([f'*{above}'] * 10)}]")
    write_profiles(tmp_path, "type: duckdb\npath: a.duckdb")
    text = (tmp_path / "profiles.yml").read_text()
    assert read_profile(tmp_path, "p", None, {}) is not None
    (tmp_path / "profiles.yml").write_text("\n".join(lines) + "\n" + text)
    assert read_profile(tmp_path, "p", None, {}) is None
