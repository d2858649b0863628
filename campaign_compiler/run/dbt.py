"""Runs dbt in-process (dbtRunner), once per command, and turns its failures into one line.

dbt's console output is silenced (stdout stays ours: `count --json` prints exactly one JSON
object); its events drive our progress display, and the full log still goes to logs/dbt.log.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from ..engines import ENGINES
from ..errors import RuntimeFailure
from ..project.dbt import PACKAGE_NAME
from ..project.target import DbtTarget, load_profile

Progress = Callable[[str, str], None]  # (node name, status) after each node
QUIET = ["--log-level", "none", "--log-level-file", "info", "--no-use-colors"]


def invoke(where: DbtTarget, args: list[str], progress: Progress | None = None, variables: dict | None = None):
    """dbt `args` on the target, with `variables` as its `--vars`.

    dbt parses the project again from scratch (seconds) whenever `--vars` differ from those of its
    last parse, and `campaign_now` differs at every command: the project is parsed without them,
    which lets dbt's partial parsing reuse target/partial_parse.msgpack (the same as a plain `dbt
    build`'s), and the command runs on that manifest with them. Our variables only fill in SQL
    when a node runs (macros read them), never a ref, a source or a config that parsing reads."""
    from dbt.cli.main import dbtRunner  # deferred: importing dbt takes a second

    def on_event(event) -> None:
        if progress is not None and event.info.name == "NodeFinished":
            node = event.data.node_info
            progress(node.node_name, node.node_status)

    _before_dbt(where)
    # Relative paths in profiles (a DuckDB file) mean the same as when dbt runs in the project.
    previous = os.getcwd()
    os.chdir(where.project.root)
    try:
        manifest = _parse(where, args[0]) if variables else None
        extra = ["--vars", json.dumps(variables, sort_keys=True), "--no-write-json"] if variables else []
        result = dbtRunner(manifest=manifest, callbacks=[on_event]).invoke([*args, *extra, *where.flags(), *QUIET])
    finally:
        os.chdir(previous)
    _raise_if_failed(result, args[0])
    if variables and hasattr(result.result, "write"):
        result.result.write(str(where.project.target_dir / "run_results.json"))
    return result


def _parse(where: DbtTarget, command: str):
    """The project's manifest, as dbt parses it without --vars (partially when it can).

    target/manifest.json (for dbt docs, `--state`) is written when the parse changed it, as `dbt
    parse` writes it; rewriting its megabyte at every command would take longer than the build of a
    small campaign. run_results.json is written after the command, which runs with --no-write-json."""
    from dbt.cli.main import dbtRunner
    from dbt.parser.manifest import write_manifest

    saved = where.project.target_dir / "partial_parse.msgpack"
    before = _stamp(saved)
    parsed = dbtRunner().invoke(["parse", "--no-write-json", *where.flags(), *QUIET])
    _raise_if_failed(parsed, command)
    after = _stamp(saved)
    if after is None or after != before or not (where.project.target_dir / "manifest.json").is_file():
        write_manifest(parsed.result, str(where.project.target_dir))
    return parsed.result


def _stamp(path: Path) -> tuple[int, int] | None:
    """When `path` was last written, and its size; None when it does not exist."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _raise_if_failed(result, command: str) -> None:
    """ProjectFailure when dbt stopped before running any node."""
    if result.exception is not None:
        raise ProjectFailure(f"dbt {command} failed: {_one_line(str(result.exception))}")


def _before_dbt(where: DbtTarget) -> None:
    """What the target's engine needs done in this process before dbt connects to it."""
    credentials = load_profile(where).credentials
    if credentials.type in ENGINES:
        ENGINES[credentials.type].before_dbt(credentials, where.project.root)


class ProjectFailure(RuntimeFailure):
    """dbt stopped before running any node: the project does not parse or compile, or the warehouse
    cannot be reached."""


def ensure_package(where: DbtTarget) -> None:
    """`dbt deps` when campaign_orchestration is not installed in the project yet."""
    if where.project.package_installed:
        return
    invoke(where, ["deps"])
    if not where.project.package_installed:
        raise RuntimeFailure(
            f"the dbt package {PACKAGE_NAME} is not installed in {where.project.root}: list it in "
            "packages.yml (- local: <path to campaign-compiler> or - git: <its repository>)"
        )


def create_tables(where: DbtTarget) -> None:
    """The tables campaigns share (delivery log, occurrences, builds), on a target where no build ran yet."""
    ensure_package(where)
    invoke(where, ["run-operation", f"{PACKAGE_NAME}.create_campaign_tables"])


def build(
    where: DbtTarget,
    selectors: list[str],
    progress: Progress | None = None,
    origins: dict[str, str] | None = None,
    variables: dict | None = None,
) -> None:
    """`dbt build` of the selected nodes but tests; any model or seed that fails is a RuntimeFailure.

    The models' key tests are checked by the count that follows every build (run.counts), in one
    query rather than a dbt node each.

    `origins` maps a model to where it comes from (file:line of its activity), named in the failure;
    `variables` are dbt's `--vars`."""
    ensure_package(where)
    result = invoke(where, ["build", "--select", *selectors, "--exclude-resource-type", "test"], progress, variables)
    failures = [
        r
        for r in (result.result.results if result.result else [])
        if str(r.status) in ("error", "fail", "runtime error")
    ]
    if failures:
        first = failures[0]
        node = first.node
        origin = (origins or {}).get(node.name) or next(
            (
                origins[parent.split(".")[-1]]
                for parent in getattr(node, "depends_on_nodes", [])
                if parent.split(".")[-1] in (origins or {})
            ),
            None,
        )
        where_from = f" ({origin})" if origin else ""
        more = f" (and {len(failures) - 1} more failures)" if len(failures) > 1 else ""
        message = _one_line(first.message or "")
        if re.search(r"(relation|table with name) \S+ does not exist", message, re.IGNORECASE):
            more += (
                " — campaign commands build the campaign's models and the seeds they read; "
                "build other upstream models with dbt first"
            )
        raise RuntimeFailure(f"dbt build failed: {node.resource_type} {node.name}{where_from}: {message}{more}")
    if not result.success:
        raise RuntimeFailure("dbt build failed; see logs/dbt.log in the project")


def read_json(path: Path) -> dict:
    """The JSON object in `path`; {} when the file is missing or is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _one_line(message: str) -> str:
    r"""dbt's message on one line for a RuntimeFailure, cut at 400 characters.

    >>> _one_line("Database Error in model summer__target\n  relation does not exist\n")
    'Database Error in model summer__target relation does not exist'
    """
    text = re.sub(r"\s+", " ", message).strip()
    return text if len(text) <= 400 else text[:397] + "..."
