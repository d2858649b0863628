"""The layout of the compiler's source: what may be said where.

Warehouses are named only in `campaign_compiler/engines/`: elsewhere an engine's name is asked of
the registry or of a warehouse's engine, so that adding one touches that package alone (and the
dbt macros).
"""

from __future__ import annotations

import ast
from pathlib import Path

from campaign_compiler.engines import DEFAULT_DIALECT, DIALECTS, ENGINES

PACKAGE = Path(__file__).resolve().parent.parent / "campaign_compiler"
ENGINES_DIR = PACKAGE / "engines"
ENGINE_NAMES = {"duckdb", "postgres", *ENGINES, *DIALECTS}
DRIVERS = {"duckdb", "psycopg2", "pyspark"}


def _modules_outside_engines() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py")) if ENGINES_DIR not in path.parents]


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings (of the module, a class, a function)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _engine_names(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Where a module writes an engine's name as a string of its own (not in a docstring or a comment)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    docstrings = _docstrings(tree)
    return [
        f"{path.relative_to(root)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and node.value.strip().lower() in ENGINE_NAMES
    ]


def _driver_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [
            f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {m}" for m in modules if m.split(".")[0] in DRIVERS
        ]
    return found


def test_the_registry_lists_each_engine_under_its_name():
    assert list(ENGINES) == ["duckdb", "postgres", "spark"]
    assert all(name == engine.name for name, engine in ENGINES.items())
    assert DIALECTS == ("duckdb", "postgres", "spark") and DEFAULT_DIALECT in DIALECTS


def test_no_module_outside_engines_names_an_engine():
    found = [hit for path in _modules_outside_engines() for hit in _engine_names(path)]
    assert found == [], "engine names outside campaign_compiler/engines/ (ask the registry):\n" + "\n".join(found)


def test_no_module_outside_engines_imports_a_driver():
    found = [hit for path in _modules_outside_engines() for hit in _driver_imports(path)]
    assert found == [], "database drivers imported outside campaign_compiler/engines/:\n" + "\n".join(found)


def test_the_check_sees_an_engine_name_but_not_a_docstring_or_a_sentence(tmp_path):
    module = tmp_path / "campaign_compiler" / "module.py"
    module.parent.mkdir()
    module.write_text(
        '"""On duckdb."""\n\n\ndef f(kind):\n    """postgres"""\n    return kind == "duckdb" or "use postgres here"\n',
        encoding="utf-8",
    )
    assert _engine_names(module, tmp_path) == ["campaign_compiler/module.py:6: 'duckdb'"]
