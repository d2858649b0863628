"""No function in campaign_compiler/ is longer than a maintainer can read at once.

A function's body (its docstring and statements, after the `def` line or lines) is at most
MAX_BODY_LINES lines. One that must be longer says why in a comment starting `# long:`, on the line
just above its `def` (above its decorators, if any) or just above its first statement (a comment
line opening the body, or the end of the `def` line).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "campaign_compiler"
MAX_BODY_LINES = 60


def _excused(lines: list[str], function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a `# long: <reason>` comment sits just above the function or just above its first statement."""
    first = min([function.lineno, *(d.lineno for d in function.decorator_list)])
    candidates = [lines[first - 2] if first >= 2 else "", lines[function.body[0].lineno - 2]]
    for line in candidates:
        comment = line.partition("#")[2].strip() if "#" in line else ""
        if comment.startswith("long:") and comment.removeprefix("long:").strip():
            return True
    return False


def long_functions(root: Path = PACKAGE) -> list[str]:
    """`path:line name (n lines)` for each function whose body is too long and says not why."""
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.end_lineno - node.body[0].lineno + 1
            if body > MAX_BODY_LINES and not _excused(lines, node):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({body} lines)")
    return found


def test_no_long_functions():
    assert long_functions() == []


def test_a_long_function_is_found_unless_it_says_why(tmp_path):
    body = "".join(f"    x = {i}\n" for i in range(MAX_BODY_LINES + 1))
    (tmp_path / "plain.py").write_text(f"def plain():\n{body}\n\ndef short():\n    return 1\n")
    (tmp_path / "above.py").write_text(
        f"# long: one SQL statement, read top to bottom\n@staticmethod\ndef above():\n{body}"
    )
    (tmp_path / "inside.py").write_text(f"def inside():\n    # long: a table of cases\n{body}")
    (tmp_path / "empty.py").write_text(f"# long:\ndef empty():\n{body}")
    assert long_functions(tmp_path) == [
        f"{tmp_path.name}/empty.py:2 empty (61 lines)",
        f"{tmp_path.name}/plain.py:1 plain (61 lines)",
    ]
