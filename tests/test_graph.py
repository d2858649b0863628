"""The canvas (`campaign graph`) and dbt docs: drawn from the last build, read in a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import DBT_PROJECT, REPO, demo_copy
from validation_helpers import run_in_process, with_data_model

from campaign_compiler.canvas import NODE_H, NODE_W, canvas, render_dot, render_html, render_mermaid
from campaign_compiler.errors import Diagnostics
from campaign_compiler.workspace import Workspace

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def wide_campaign(blocks: int) -> str:
    """A generated campaign of 5 activities per block, blocks joined two by two."""
    lines = ["campaign: wide", "activities:"]
    for n in range(blocks):
        lines += [
            f'  a{n}: {{type: build_audience, where: "profile_id > {n}"}}',
            f"  s{n}: {{type: split, input: a{n}, subsets: [{{name: x, where: \"country = 'FR'\"}}], complement: y}}",
            f"  u{n}: {{type: combine, mode: union, inputs: [s{n}.x, {'s' + str(n - 1) + '.y' if n else 'a0'}]}}",
            f"  f{n}: {{type: fork, input: u{n}, outputs: [l, r]}}",
            f"  e{n}: {{type: end, input: f{n}.l}}",
        ]
    return "\n".join(lines) + "\n"


def load(project, monkeypatch, text: str):
    with_data_model(project)
    project.write("campaigns/wide.yml", text)
    monkeypatch.chdir(project.root)
    diagnostics = Diagnostics()
    workspace = Workspace(project.root)
    campaign = workspace.load("wide", diagnostics)
    assert not diagnostics, diagnostics.sorted()
    return campaign, workspace


@pytest.mark.parametrize("blocks", [1, 20])
def test_layout_places_every_activity_without_overlap(project, monkeypatch, blocks):
    campaign, workspace = load(project, monkeypatch, wide_campaign(blocks))
    drawn = canvas(campaign, {}, {}, {}, None, workspace.dbt.root)
    assert len(drawn.nodes) == 5 * blocks
    boxes = [(n.x, n.y) for n in drawn.nodes.values()]
    for i, (x, y) in enumerate(boxes):
        for x2, y2 in boxes[i + 1 :]:
            assert abs(x - x2) >= NODE_W or abs(y - y2) >= NODE_H
    for edge in drawn.edges:  # left to right
        if edge.target is not None:
            assert drawn.nodes[edge.source].x < drawn.nodes[edge.target].x
    # the outputs nothing reads: every fork's r and the last split's y (an end's rows are its input's)
    assert {(e.source, e.output) for e in drawn.edges if e.target is None} == {
        (f"f{n}", "r") for n in range(blocks)
    } | {(f"s{blocks - 1}", "y")}
    page = render_html(drawn)
    assert page.count('<g class="node ') == 5 * blocks
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def test_mermaid_and_dot_have_every_node_transition_and_output(project, monkeypatch):
    campaign, workspace = load(project, monkeypatch, wide_campaign(2))
    model = {m.name: i * 10 for i, m in enumerate(campaign.models())}
    drawn = canvas(campaign, model, {}, {}, "duckdb", workspace.dbt.root)
    mermaid, dot = render_mermaid(drawn), render_dot(drawn)
    assert mermaid.startswith("flowchart LR\n") and dot.startswith('digraph "wide" {')
    unread = 0
    for edge in drawn.edges:
        label = f"{edge.rows:,}" + ("" if edge.output == "out" else f" ({edge.output})")
        if edge.target is None:  # an output nothing reads ends at a point
            unread += 1
            point = f"{edge.source}_OUT_{edge.output}"
            assert f'    {edge.source} -- "{label}" --> {point}((" "))' in mermaid
            assert f'  "{point}" [label="", shape=point];' in dot
            assert f'  "{edge.source}" -> "{point}" [label="{label}"];' in dot
        else:
            assert f'    {edge.source} -- "{label}" --> {edge.target}' in mermaid
            assert f'  "{edge.source}" -> "{edge.target}" [label="{label}"];' in dot
    assert unread == 3
    assert len(re.findall(r"^  \"\w+\" \[label=\"\w", dot, re.MULTILINE)) == 10


HALVES = """\
campaign: halves
activities:
  everyone: {type: build_audience}
  by_country:
    type: split
    input: everyone
    subsets: [{name: french, where: "country = 'FR'"}]
    complement: others
  texted: {type: sms, input: by_country.french, template: templates/sms.yml, category: transactional}
  done: {type: end, input: by_country.french}
"""


@pytest.mark.slow
def test_mermaid_and_dot_show_an_output_nothing_reads_with_its_count(project, target):
    """A split's complement that no activity reads ends at a point of its own, labelled like a
    transition; a channel's recipients and an end's rows are not drawn again."""
    with_data_model(project)
    project.write("dbt_project.yml", DBT_PROJECT + "    profiles:\n      +column_types: {phone: text}\n")
    project.write(
        "seeds/profiles.csv",
        "profile_id,first_name,email,phone,country,loyalty_tier,email_opt_in,created_at\n"
        "1,Ann,ann@example.com,+33600000001,FR,gold,true,2020-01-01 00:00:00\n"
        "2,Bob,bob@example.com,+33600000002,FR,gold,true,2020-01-01 00:00:00\n"
        "3,Cid,cid@example.com,+49600000003,DE,gold,true,2020-01-01 00:00:00\n"
        "4,Dee,dee@example.com,+49600000004,DE,gold,true,2020-01-01 00:00:00\n"
        "5,Eve,eve@example.com,+49600000005,,gold,true,2020-01-01 00:00:00\n",
    )
    project.write("campaigns/halves.yml", HALVES)
    project.write("templates/sms.yml", 'body: "Hi {{ first_name }}"\n')
    counts = project.count("halves", target)["counts"]
    others = project.scalar(target, "select count(*) from profiles where country is null or country <> 'FR'")
    assert counts["by_country.others"] == others == 3

    mermaid = project.run("graph", "halves", "--format", "mermaid", "--target", target)
    dot = project.run("graph", "halves", "--format", "dot", "--target", target)
    assert mermaid.code == 0 and dot.code == 0, mermaid.stderr + dot.stderr
    assert f'    by_country -- "{others} (others)" --> by_country_OUT_others((" "))' in mermaid.stdout
    assert f'  "by_country" -> "by_country_OUT_others" [label="{others} (others)"];' in dot.stdout
    assert '  "by_country_OUT_others" [label="", shape=point];' in dot.stdout
    assert mermaid.stdout.count("_OUT_") == 1 and dot.stdout.count("shape=point") == 1


def browser_page(playwright):
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
    return browser, browser.new_page(viewport={"width": 1600, "height": 900})


@pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true", reason="Chromium is not installed")
def test_a_hundred_activities_stay_readable_when_zoomed(project, monkeypatch):
    from playwright.sync_api import sync_playwright

    campaign, workspace = load(project, monkeypatch, wide_campaign(20))
    rows = {m.name: 1000 + i for i, m in enumerate(campaign.models())}
    path = project.root / "wide.html"
    path.write_text(render_html(canvas(campaign, rows, {}, {}, "duckdb", workspace.dbt.root)))
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        page.goto(path.as_uri())
        assert page.locator(".node").count() == 100
        page.screenshot(path=str(ARTIFACTS / "canvas_100_fit.png"))
        # every name fits in its box, no two boxes overlap, in the browser's own geometry
        boxes = page.eval_on_selector_all(
            ".node",
            """nodes => nodes.map(n => {
            const r = n.querySelector('rect').getBBox(), t = n.querySelector('.name').getBBox();
            const m = n.transform.baseVal.consolidate().matrix;
            return [m.e, m.f, r.width, r.height, t.x + t.width]; })""",
        )
        for i, (x, y, w, h, text_end) in enumerate(boxes):
            assert text_end <= w - 4
            for x2, y2, *_ in boxes[i + 1 :]:
                assert abs(x - x2) >= w or abs(y - y2) >= h
        for _ in range(4):
            page.click("#zoom-in")
        page.click('.node[data-activity="u10"]')
        assert "u10" in page.text_content("#details h2")
        page.screenshot(path=str(ARTIFACTS / "canvas_100_zoomed.png"))
        browser.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo project, counted: every working table built, its canvas written."""
    project = demo_copy(tmp_path_factory.mktemp("graph") / "demo")
    results = {name: project.count(name, "dev") for name in ("summer_promo", "winback")}
    return project, results


@pytest.mark.slow
@pytest.mark.duckdb
def test_dbt_docs_show_each_campaign_ending_in_its_sends(demo):
    project, _ = demo
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    models = {
        n["name"]: n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["name"].startswith("summer_promo__")
    }
    assert len(models) == 19
    for model in models.values():
        meta = model["config"]["meta"]
        assert meta["campaign"] == "summer_promo" and meta["campaign_file"] == "campaigns/summer_promo.yml"
        assert {"activity", "activity_type", "line", "output"} <= set(meta)
        assert model["description"].startswith(("Activity `", "Output `"))
        assert "campaign_summer_promo" in model["tags"]
    exposures = {e["name"]: e for e in manifest["exposures"].values() if e["meta"].get("campaign") == "summer_promo"}
    assert sorted(exposures) == ["summer_promo__regulars_sms", "summer_promo__vip_email"]
    for name, exposure in exposures.items():
        assert exposure["type"] == "application"
        assert exposure["depends_on"]["nodes"] == [f"model.hotel_demo.{name}"]
        assert exposure["owner"]["email"] == "crm@azur.example"


@pytest.mark.slow
@pytest.mark.duckdb
@pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true", reason="Chromium is not installed")
def test_the_canvas_in_a_browser_shows_every_activity_and_count(demo):
    from playwright.sync_api import sync_playwright

    project, results = demo
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        for name, result in results.items():
            page.goto((project.root / "target" / "canvas" / "dev" / f"{name}.html").as_uri())
            activities = page.eval_on_selector_all(".node", "nodes => nodes.map(n => n.dataset.activity)")
            edges = page.eval_on_selector_all(
                ".edge",
                """edges => edges.map(e => [e.dataset.source,
                e.dataset.output, e.dataset.rows, Array.from(e.querySelectorAll('text'), t => t.textContent)])""",
            )
            counts = result["counts"]
            assert sorted(activities) == sorted({k.split(".")[0] for k in counts})
            labels = {}
            for source, output, rows, texts in edges:
                key = source if output == "out" else f"{source}.{output}"
                # a working table's count; a channel's out is its recipients
                expected = counts[key] if key in counts else result["channels"][source]["recipients"]
                assert int(rows) == expected
                if texts:
                    labels[(source, output)] = texts
            for (source, output), texts in labels.items():
                key = source if output == "out" else f"{source}.{output}"
                expected = counts[key] if key in counts else result["channels"][source]["recipients"]
                assert texts == [f"{expected:,}"] + ([] if output == "out" else [output])
            assert len(labels) == len({(s, o) for s, o, _, _ in edges})  # every transition labelled once
            for activity, channel in result["channels"].items():
                text = page.text_content(f'.node[data-activity="{activity}"] .count')
                assert text == f"{channel['messages']:,} messages"
            page.screenshot(path=str(ARTIFACTS / f"canvas_{name}.png"))
        page.goto((project.root / "target" / "canvas" / "dev" / "summer_promo.html").as_uri())
        # a split has no count of its own: its outputs' are on its edges
        assert page.text_content('.node[data-activity="segments"] .count') == "4 outputs"
        assert (
            page.text_content('.node[data-activity="target"] .count')
            == f"{results['summer_promo']['counts']['target']:,} rows"
        )
        page.click('.node[data-activity="vip_email"]')
        panel = page.text_content("#details")
        assert "summer_promo__vip_email" in panel and "no consent" in panel
        assert "control group" in panel and "template: templates/summer_offer.yml" in panel
        assert "select" in page.text_content("#details pre.sql").lower()
        page.screenshot(path=str(ARTIFACTS / "canvas_summer_promo_details.png"))
        browser.close()


@pytest.mark.slow
@pytest.mark.duckdb
def test_graph_command_reads_the_warehouse_and_says_not_built(demo, monkeypatch):
    project, results = demo
    code, out, _ = run_in_process(project, monkeypatch, "graph", "trade_show", "--format", "dot")
    assert code == 0
    assert '"matched" -> "their_bookings" [label="not built"];' in out
    code, out, err = run_in_process(project, monkeypatch, "graph", "summer_promo", "-o", "canvas.html")
    assert code == 0 and out == "" and err == "Canvas of summer_promo: canvas.html\n"  # stdout is for data
    page = Path(project.root / "canvas.html").read_text()
    assert f'data-rows="{results["summer_promo"]["counts"]["target"]}"' in page
