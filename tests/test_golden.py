"""Golden compile: the models written for a campaign with one activity of each type.

Set UPDATE_GOLDEN=1 to rewrite the expected files after an intended change, then review the diff.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from validation_helpers import run_in_process, with_data_model

GOLDEN = Path(__file__).parent / "golden"


def test_every_activity_compiles_to_the_expected_models(project, monkeypatch):
    with_data_model(project)
    project.write("data/incoming.csv", "Email,Points,ignored\na@example.com,3,x\n\nb@example.com,,y\n")
    project.write("campaigns/golden.yml", (GOLDEN / "every_activity.yml").read_text())
    project.write("templates/stay.yml", (GOLDEN / "templates" / "stay.yml").read_text())
    code, out, err = run_in_process(project, monkeypatch, "compile", "golden")
    assert code == 0, err
    written = {
        p.relative_to(project.root).as_posix(): p.read_text()
        for base in ("models/campaigns/golden", "seeds/campaigns/golden")
        for p in sorted((project.root / base).iterdir())
    }
    expected_dir = GOLDEN / "every_activity"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(expected_dir, ignore_errors=True)
        for name, text in written.items():
            (expected_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / name).write_text(text)
    expected = {
        p.relative_to(expected_dir).as_posix(): p.read_text() for p in sorted(expected_dir.rglob("*")) if p.is_file()
    }
    assert sorted(written) == sorted(expected)
    for name in expected:
        assert written[name] == expected[name], name


def test_recompiling_removes_stale_models(project, monkeypatch):
    with_data_model(project)
    project.write(
        "campaigns/c.yml",
        """\
        campaign: c
        activities:
          a: {type: build_audience}
          s: {type: split, input: a, subsets: [{name: x}, {name: y}]}
        """,
    )
    assert run_in_process(project, monkeypatch, "compile", "c")[0] == 0
    models = project.root / "models" / "campaigns" / "c"
    assert (models / "c__s__y.sql").exists()
    project.write(
        "campaigns/c.yml",
        """\
        campaign: c
        activities:
          a: {type: build_audience}
          s: {type: split, input: a, subsets: [{name: x}]}
        """,
    )
    code, _, err = run_in_process(project, monkeypatch, "compile", "c")
    assert code == 0 and "removed 2 stale files" in err
    assert sorted(p.name for p in models.iterdir()) == ["c__a.sql", "c__a.yml", "c__s__x.sql", "c__s__x.yml"]


def test_the_models_of_a_deleted_campaign_are_removed(project, monkeypatch):
    with_data_model(project)
    project.write("campaigns/old.yml", "campaign: old\nactivities:\n  a: {type: build_audience}\n")
    project.write("campaigns/new.yml", "campaign: new\nactivities:\n  a: {type: build_audience}\n")
    assert run_in_process(project, monkeypatch, "compile", "old", "new")[0] == 0
    project.write("models/campaigns/hand_written/keep.sql", "select 1 as a\n")
    (project.root / "campaigns" / "old.yml").unlink()
    code, _, err = run_in_process(project, monkeypatch, "compile", "new")
    assert code == 0 and "removed models/campaigns/old: its campaign no longer exists" in err
    assert sorted(p.name for p in (project.root / "models" / "campaigns").iterdir()) == ["hand_written", "new"]
