"""The contract between the compiler and the package's macros (macros/macros.yml).

Every model `campaign compile` writes for the demo project, the semantics project and the golden
campaign calls documented macros with declared arguments only; macros.yml declares exactly the
arguments each macro takes; each file under macros/ defines one macro and its dispatch variants (a
file under macros/materializations/, one materialization and its adapter variants).
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml
from conftest import REPO, Project
from dbt_common.clients.jinja import MaterializationExtension
from jinja2 import nodes
from semantics_project import make_project
from validation_helpers import with_data_model

from campaign_compiler.compile.contract import ADDRESS_PATTERNS, EXCLUSION_ORDER, RESERVED_COLUMNS
from campaign_compiler.compile.emit import campaign_digests, render_model
from campaign_compiler.errors import Diagnostics
from campaign_compiler.project.dbt import PACKAGE_NAME
from campaign_compiler.workspace import Workspace

MACROS = REPO / "macros"
GOLDEN = REPO / "tests" / "golden"
ADAPTERS = ("default", "duckdb", "postgres", "spark")  # the prefixes of dispatch variants
JINJA = jinja2.Environment(extensions=["jinja2.ext.do", MaterializationExtension])
MATERIALIZATION = "dbt_macro__materialization_"  # what dbt's extension names a materialization's macro


def documentation() -> list[dict]:
    return yaml.safe_load((MACROS / "macros.yml").read_text(encoding="utf-8"))["macros"]


def declared() -> dict[str, list[str]]:
    """Macro -> its arguments, as macros.yml documents them."""
    return {macro["name"]: [a["name"] for a in macro.get("arguments", [])] for macro in documentation()}


def defined() -> dict[Path, list[nodes.Macro]]:
    """The macros of each file under macros/ but materializations/."""
    return {path: _parsed(path) for path in sorted(MACROS.rglob("*.sql")) if path.parent.name != "materializations"}


def _parsed(path: Path) -> list[nodes.Macro]:
    return list(JINJA.parse(path.read_text(encoding="utf-8")).find_all(nodes.Macro))


def test_each_materialization_file_defines_its_materialization_per_adapter():
    for path in sorted((MACROS / "materializations").glob("*.sql")):
        names = [macro.name for macro in _parsed(path)]
        assert names[:1] == [f"{MATERIALIZATION}{path.stem}_default"], names
        assert set(names) <= {f"{MATERIALIZATION}{path.stem}_{a}" for a in ADAPTERS}, names


def package_calls(text: str) -> list[tuple[str, int, list[str]]]:
    """(macro, positional arguments, keyword arguments) of each call of a package macro in a model,
    hooks included (a string holding Jinja is parsed in turn)."""
    calls = []
    for node in JINJA.parse(text).find_all((nodes.Call, nodes.Const)):
        if isinstance(node, nodes.Const):
            if isinstance(node.value, str) and "{{" in node.value:
                calls += package_calls(node.value)
        elif (
            isinstance(node.node, nodes.Getattr)
            and isinstance(node.node.node, nodes.Name)
            and node.node.node.name == PACKAGE_NAME
        ):
            calls.append((node.node.attr, len(node.args), [k.key for k in node.kwargs]))
    return calls


def compiled_models(root: Path) -> dict[str, str]:
    """Model name -> the text `campaign compile` writes, for every campaign of the project."""
    workspace = Workspace(root)
    models = {}
    for name in workspace.names():
        diagnostics = Diagnostics()
        campaign = workspace.load(name, diagnostics)
        assert campaign is not None and not diagnostics, [d.message for d in diagnostics.sorted()]
        digests = campaign_digests(campaign)
        for model in campaign.models():
            models[model.name] = render_model(model, campaign, f"campaigns/{name}.yml", digests[model.name])
    return models


@pytest.fixture(scope="module")
def every_model(tmp_path_factory) -> dict[str, str]:
    models = compiled_models(REPO / "dbt_project")
    models.update(compiled_models(make_project(tmp_path_factory.mktemp("semantics")).root))
    golden = with_data_model(make_golden(tmp_path_factory.mktemp("golden")))
    models.update(compiled_models(golden.root))
    return models


def make_golden(root: Path) -> Project:
    """The golden campaign's project (see test_golden)."""
    project = Project(root / "project")
    project.write("data/incoming.csv", "Email,Points,ignored\na@example.com,3,x\n\nb@example.com,,y\n")
    project.write("campaigns/golden.yml", (GOLDEN / "every_activity.yml").read_text())
    project.write("templates/stay.yml", (GOLDEN / "templates" / "stay.yml").read_text())
    return project


def test_every_macro_call_the_compiler_writes_is_documented_with_its_arguments(every_model):
    documented = declared()
    called = set()
    for model, text in every_model.items():
        calls = package_calls(text)
        assert calls, model
        for macro, positional, keywords in calls:
            called.add(macro)
            assert macro in documented, f"{model}: {macro} is not in macros.yml"
            arguments = documented[macro]
            assert positional <= len(arguments), f"{model}: {macro} takes {len(arguments)} arguments"
            undeclared = [k for k in keywords if k not in arguments[positional:]]
            assert not undeclared, f"{model}: {macro} has no argument {', '.join(undeclared)} in macros.yml"
    # one call of each activity macro at least, and the post-hook
    activities = {path.stem for path in (MACROS / "activities").glob("*.sql")}
    assert activities | {"record_build"} <= called


def test_macros_yml_declares_the_arguments_each_macro_takes():
    documented = declared()
    macros = {macro.name: macro for found in defined().values() for macro in found}
    for name, arguments in documented.items():
        assert name in macros, f"macros.yml documents {name}, which no file defines"
        assert arguments == [a.name for a in macros[name].args], name
    public = {name for name in macros if not name.startswith(tuple(f"{a}__" for a in ADAPTERS))}
    assert public <= set(documented), f"undocumented: {sorted(public - set(documented))}"


def test_the_argument_types_are_those_dbt_validates():
    """dbt checks them with the flag validate_macro_args (its default from dbt 1.12)."""
    from dbt.parser.schemas import is_valid_type  # deferred: importing dbt takes seconds

    for macro in documentation():
        for argument in macro.get("arguments", []):
            assert argument.get("description") and is_valid_type(argument["type"]), (macro["name"], argument)


def test_each_macro_file_defines_one_macro_and_its_dispatch_variants():
    for path, found in defined().items():
        names = [macro.name for macro in found]
        variants = [name for name in names if name in {f"{a}__{path.stem}" for a in ADAPTERS}]
        assert names[:1] == [path.stem] and len(names) == 1 + len(variants), f"{path.relative_to(REPO)}: {names}"


def test_the_channel_models_carry_the_contract(every_model):
    """The candidates models pass the exclusion reasons, reserved columns and address patterns of
    compile/contract.py: the macros hard-code none of them."""
    channels = 0
    for model, text in every_model.items():
        if model.endswith("__candidates"):
            channels += 1
            call = next(c for c in JINJA.parse(text).find_all(nodes.Call) if isinstance(c.node, nodes.Getattr))
            given = {
                k.key: k.value.as_const()
                for k in call.kwargs
                if k.key in ("exclusion_reasons", "reserved_columns", "address_pattern")
            }
            assert given["exclusion_reasons"] == list(EXCLUSION_ORDER)
            assert given["reserved_columns"] == list(RESERVED_COLUMNS)
            assert given.get("address_pattern") == ADDRESS_PATTERNS.get(call.node.attr), model
    assert channels >= 4
    macros = "\n".join(path.read_text(encoding="utf-8") for path in MACROS.rglob("*.sql"))
    for reason in EXCLUSION_ORDER:
        assert f"'{reason}'" in macros  # the conditions are the macro's; their order is not
    assert "[1-9][0-9]{6,14}" not in macros and "2028" not in macros


def test_count_checks_the_key_of_every_model_but_the_filters_of_a_channel_s_candidates():
    """The unique/not_null tests the models declare are checked by the count query (no test node):
    on each model, except a channel's messages, exclusions and recipients, filters of models built
    with them whose keys are checked."""
    from campaign_compiler.run.counts import checked_keys

    diagnostics = Diagnostics()
    campaign = Workspace(REPO / "dbt_project").load("summer_promo", diagnostics)
    assert campaign is not None and not diagnostics
    keys = checked_keys(campaign.step_models("start"))
    tested = {m.name for m in campaign.models() if m.keyed}
    filters = {
        f"summer_promo__{activity}{suffix}"
        for activity in ("vip_email", "regulars_sms")
        for suffix in ("", "__excluded", "__recipients")
    }
    assert set(keys) == tested - filters
    assert keys["summer_promo__vip_email__candidates"] == "message_key"
    assert keys["summer_promo__with_history"] == "profile_id"
