"""The `campaign` command as a user runs it: options, outputs, exit codes."""

from __future__ import annotations

import json
import re

import pytest
from conftest import PG, REPO, Project, run_cli
from validation_helpers import DATA_MODEL, PROFILES_CSV, run_in_process

CAMPAIGN = """\
campaign: fr
activities:
  fr: {type: build_audience, where: "country = 'FR'"}
  split:
    type: split
    input: fr
    subsets: [{name: gold, where: "loyalty_tier = 'gold'"}]
    complement: others
"""


@pytest.fixture
def small(project: Project) -> Project:
    project.write("campaign_project.yml", DATA_MODEL)
    project.write("seeds/profiles.csv", PROFILES_CSV)
    project.write("seeds/bookings.csv", "booking_id,profile_id,hotel_id,status,amount,checkin_date\n")
    project.write("seeds/hotels.csv", "hotel_id,city\n")
    project.write("campaigns/fr.yml", CAMPAIGN)
    return project


def test_project_options_are_accepted_before_and_after_the_command(small, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = run_cli("--project-dir", str(small.root), "validate", "fr", cwd=elsewhere)
    after = run_cli("validate", "fr", "--project-dir", str(small.root), cwd=elsewhere)
    assert before.code == after.code == 0
    assert before.stdout == after.stdout == "fr: ok (2 activities, 3 working tables)\n"


def test_errors_name_files_relative_to_where_the_user_is(small, tmp_path):
    small.write("campaigns/bad.yml", 'campaign: bad\nactivities:\n  a: {type: build_audience, where: "x = 1"}\n')
    result = run_cli("--project-dir", "project", "validate", "bad", cwd=small.root.parent)
    assert result.code == 2
    assert result.errors == [
        'project/campaigns/bad.yml:3:37: error: unknown column "x" in condition: not a column of "profiles"'
    ]


@pytest.mark.slow
@pytest.mark.duckdb
def test_count_json_is_one_object_on_stdout_and_the_table_lists_every_working_table(small):
    result = small.run("count", "fr", "--json")
    assert result.code == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert json.loads(result.stdout) == {
        "campaign": "fr",
        "target": "duckdb",
        "counts": {"fr": 2, "split.gold": 1, "split.others": 1},
        "channels": {},
    }
    assert (small.root / "dbt_packages" / "campaign_orchestration").exists()  # dbt deps ran by itself
    table = small.run("count", "fr")
    assert table.code == 0, table.stderr
    rows = [line.split("│")[1:-1] for line in table.stdout.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["fr", "build_audience", "profiles", "fr__fr", "2"],
        ["split.gold", "split", "profiles", "fr__split__gold", "1"],
        ["split.others", "split", "profiles", "fr__split__others", "1"],
    ]


@pytest.mark.slow
@pytest.mark.duckdb
def test_a_key_repeated_in_an_entity_stops_count_at_the_activity_that_reads_it(small):
    """The build runs no key test node; the count query checks every model's key instead."""
    small.write(
        "seeds/profiles.csv", PROFILES_CSV + "1,Anna again,anna2@example.com,,FR,gold,true,2020-01-01 00:00:00\n"
    )
    result = small.run("count", "fr")
    assert result.code == 1
    assert result.stderr.strip().splitlines()[-1] == (  # fr keeps distinct keys; the split reads profiles again
        "error: model fr__split__gold (campaigns/fr.yml:4, activity split): its key profile_id has 1 repeated "
        "values, so its rows are not one per key; are the keys of the entities it reads unique and never NULL?"
    )
    results = json.loads((small.root / "target" / "run_results.json").read_text())["results"]
    assert results and not [r for r in results if r["unique_id"].startswith("test.")]


@pytest.mark.slow
@pytest.mark.postgres
def test_a_warehouse_that_is_down_is_one_line_and_exit_1(small, postgres):
    small.write(
        "profiles.yml", small.root.joinpath("profiles.yml").read_text().replace(f"port: {PG['port']}", "port: 1")
    )
    result = small.run("count", "fr", "--target", "postgres")
    assert result.code == 1
    assert result.stderr.startswith('error: cannot connect to the postgres warehouse of target "postgres": ')
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_an_unknown_target_is_bad_input_located_in_profiles_yml(small):
    result = small.run("count", "fr", "--target", "postgre")
    assert result.code == 2
    assert result.errors == [
        'profiles.yml:3:3: error: profile "test_project" has no target "postgre" (did you mean "postgres"?)'
    ]
    assert not small.root.joinpath("target", "warehouse.duckdb").exists()


def test_an_adapter_that_is_not_installed_is_bad_input_saying_what_to_install(small):
    small.write("profiles.yml", small.root.joinpath("profiles.yml").read_text().replace("type: duckdb", "type: nosuch"))
    result = small.run("count", "fr")
    assert result.code == 2
    assert len(result.errors) == 1 and result.errors[0].startswith("profiles.yml:3:3: error: ")
    assert result.errors[0].endswith("Could not find adapter type nosuch! (install its dbt adapter, dbt-nosuch)")


def test_a_missing_environment_variable_in_the_profile_is_bad_input(small, monkeypatch):
    monkeypatch.delenv("CAMPAIGN_TEST_DB_PATH", raising=False)
    small.write(
        "profiles.yml",
        small.root.joinpath("profiles.yml")
        .read_text()
        .replace("path: target/warehouse.duckdb", "path: \"{{ env_var('CAMPAIGN_TEST_DB_PATH') }}\""),
    )
    result = small.run("status", "fr")
    assert result.code == 2
    assert len(result.errors) == 1 and result.errors[0].startswith("profiles.yml:3:3: error: ")
    assert "CAMPAIGN_TEST_DB_PATH" in result.errors[0] and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_project_without_the_package_is_told_how_to_add_it(small):
    small.write("packages.yml", "packages: []\n")
    result = small.run("count", "fr")
    assert result.code == 1
    assert "campaign_orchestration is not installed" in result.stderr and "packages.yml" in result.stderr


@pytest.mark.slow
@pytest.mark.duckdb
def test_a_seed_the_campaign_reads_is_reloaded_only_when_it_changed(small):
    import json as json_

    def seeds_built() -> set:
        results = json_.loads((small.root / "target" / "run_results.json").read_text())["results"]
        return {r["unique_id"].split(".")[-1] for r in results if r["unique_id"].startswith("seed.")}

    assert small.count("fr")["counts"]["fr"] == 2
    assert seeds_built() == {"profiles"}
    assert small.count("fr")["counts"]["fr"] == 2
    assert seeds_built() == set()
    with (small.root / "seeds" / "profiles.csv").open("a") as handle:
        handle.write("4,Dora,dora@example.com,,FR,none,true,2023-01-01 00:00:00\n")
    assert small.count("fr")["counts"]["fr"] == 3
    assert seeds_built() == {"profiles"}


def test_the_product_cites_no_document_it_does_not_ship(small, monkeypatch):
    shipped = [
        REPO / "README.md",
        REPO / "dbt_project.yml",
        *REPO.glob("campaign_compiler/**/*.py"),
        *REPO.glob("macros/**/*.*"),
        *REPO.glob("models/**/*.*"),
        *REPO.glob("docs/**/*.*"),
        *REPO.glob("dbt_project/**/*.yml"),
    ]
    # what git ships: not what dbt writes under target/ (where a test's folder is named after its .yml)
    shipped = [path for path in shipped if path.is_file() and not {"target", "dbt_packages", "logs"} & set(path.parts)]
    cited = [
        f"{path.relative_to(REPO)}:{number}"
        for path in shipped
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"\bSPEC\b|§", line)
    ]
    assert cited == []
    for command in ([], ["validate"], ["compile"], ["count"], ["run"], ["send"], ["status"], ["graph"]):
        code, out, _ = run_in_process(small, monkeypatch, *command, "--help")
        assert code == 0 and out and not re.search(r"\bSPEC\b|§", out)


LOADED = """\
campaign: visitors
activities:
  file: {type: load_file, path: data/visitors.csv, columns: {email: text}}
  fr: {type: build_audience, where: "country = 'FR'"}
"""


def generated(project: Project) -> dict[str, bytes | None]:
    """Every folder and file under models/ and seeds/, with its content."""
    return {
        path.relative_to(project.root).as_posix(): None if path.is_dir() else path.read_bytes()
        for base in ("models", "seeds")
        for path in sorted((project.root / base).rglob("*"))
    }


@pytest.fixture
def compiled(small: Project, monkeypatch) -> dict[str, bytes | None]:
    """Both campaigns compiled, then both changed: a compile now rewrites the folders of each."""
    small.write("campaigns/visitors.yml", LOADED)
    small.write("data/visitors.csv", "email\nann@example.com\n")
    assert run_in_process(small, monkeypatch, "compile")[0] == 0
    before = generated(small)
    assert {"models/campaigns/fr", "models/campaigns/visitors", "seeds/campaigns/visitors"} <= set(before)
    small.write("campaigns/fr.yml", CAMPAIGN.replace("'FR'", "'DE'"))
    small.write("campaigns/visitors.yml", LOADED.replace("'FR'", "'DE'"))
    small.write("data/visitors.csv", "email\nann@example.com\nbob@example.com\n")
    return before


def test_a_file_not_utf8_past_its_header_is_refused_before_anything_is_written(small, compiled, monkeypatch):
    rows = "".join(f"guest{i}@example.com\n" for i in range(2000)).encode()  # well past what a first read takes
    (small.root / "data" / "visitors.csv").write_bytes(b"email\n" + rows + b"b\xf6b@example.com\n")
    code, _, err = run_in_process(small, monkeypatch, "compile")
    assert code == 2, err
    assert [line for line in err.splitlines() if ": error: " in line] == [
        "data/visitors.csv:2002:2: error: invalid UTF-8 (byte 0xf6): CSV files are read as UTF-8"
    ]
    assert generated(small) == compiled


@pytest.mark.parametrize(
    "fault, calls",
    [("pathlib.Path.write_bytes", 3), ("os.replace", 3), ("os.replace", 4)],
    ids=["while-writing", "while-moving-a-folder-aside", "while-moving-a-folder-in"],
)
def test_a_compile_that_fails_leaves_every_generated_file_as_it_was(small, compiled, monkeypatch, fault, calls):
    """The disk fills up part way: no campaign is left half written, neither the one being written
    nor those written before it; the error is one line."""
    module, _, name = fault.rpartition(".")
    owner = {"pathlib.Path": __import__("pathlib").Path, "os": __import__("os")}[module]
    original, made = getattr(owner, name), []

    def failing(*args, **kwargs):
        made.append(args)
        if len(made) == calls:
            raise OSError(28, "No space left on device")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    code, _, err = run_in_process(small, monkeypatch, "compile")
    monkeypatch.undo()
    assert code == 1, err
    assert err.splitlines() == [
        "error: could not write the generated files ([Errno 28] No space left on device); "
        "the project's generated files are as they were"
    ]
    assert generated(small) == compiled
    assert not list((small.root / "target").glob("campaign_compile_*"))


@pytest.mark.slow
@pytest.mark.duckdb
def test_models_dbt_cannot_parse_are_put_back_and_break_no_other_campaign(small, monkeypatch):
    """Should a generated model not parse, count puts the generated files back as they were: left in
    place, they would break the build of every campaign of the project."""
    from campaign_compiler.compile import emit

    small.write("campaigns/de.yml", CAMPAIGN.replace("campaign: fr", "campaign: de").replace("'FR'", "'DE'"))
    assert small.count("de")["counts"]["fr"] == 1
    before = generated(small)
    render = emit.render_model
    monkeypatch.setattr(
        emit,
        "render_model",
        lambda model, campaign, *args: (
            render(model, campaign, *args) + ("{{ [] + {}['columns'] }}\n" if campaign.name == "fr" else "")
        ),
    )
    code, _, err = run_in_process(small, monkeypatch, "count", "fr")
    monkeypatch.undo()
    assert code == 1, err
    assert err.splitlines()[-1].startswith("error: dbt build failed: ")
    assert err.splitlines()[-1].endswith("; the generated files are as they were before this command")
    assert generated(small) == before
    assert small.count("de")["counts"]["fr"] == 1


@pytest.mark.slow
@pytest.mark.duckdb
def test_a_count_at_another_time_reuses_dbts_parse(small):
    """The time of each count is one of dbt's --vars, which differ at every command: dbt must still
    reuse its partial parse (target/partial_parse.msgpack) instead of parsing the project again."""
    assert small.count("fr")["counts"]["fr"] == 2
    log = small.root / "logs" / "dbt.log"
    before = len(log.read_text())
    again = small.run("count", "fr", "--json", "--target", "duckdb", "--now", "2030-01-02T03:04:05")
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["fr"] == 2
    written = log.read_text()[before:]
    assert "Running with dbt" in written
    assert "Unable to do partial parsing" not in written and "full parse" not in written
    ran = json.loads((small.root / "target" / "run_results.json").read_text())["args"]["vars"]
    assert ran["campaign_now"] == "2030-01-02 03:04:05"  # and the build ran with them


@pytest.mark.slow
def test_a_model_failing_on_the_warehouse_leaves_its_previous_table_and_build(small, target):
    """A working table whose query fails when it runs (a cast of every tier) names the model and its
    activity, and leaves the table built before, and its record in campaign_builds, as they were:
    campaign_table drops and creates in one transaction with the post-hook that records it."""
    counts = small.count("fr", target)["counts"]
    schema = "main" if target == "duckdb" else small.schema
    gold, builds = f"{schema}.fr__split__gold", f"{schema}.campaign_builds"
    rows = sorted(small.query(target, f"select * from {gold}"))
    record = small.query(target, f"select digest, invocation_id from {builds} where node = 'fr__split__gold'")
    assert len(rows) == counts["split.gold"] > 0 and len(record) == 1
    small.write("campaigns/fr.yml", CAMPAIGN.replace("loyalty_tier = 'gold'", "cast(loyalty_tier as integer) = 1"))
    failed = small.run("count", "fr", "--target", target)
    assert failed.code == 1, failed.stderr
    assert failed.stderr.splitlines()[-1].startswith(
        "error: dbt build failed: model fr__split__gold (campaigns/fr.yml:4, activity split): "
    )
    assert sorted(small.query(target, f"select * from {gold}")) == rows
    assert small.query(target, f"select digest, invocation_id from {builds} where node = 'fr__split__gold'") == record
