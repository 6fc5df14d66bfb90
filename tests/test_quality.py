"""The code stays ruff- and mypy-clean: checked by the test command, so CI enforces it."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[test]')")
    return path


def test_ruff_check() -> None:
    out = subprocess.run(
        [_tool("ruff"), "check", "src", "tests", "bench"],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format() -> None:
    out = subprocess.run(
        [_tool("ruff"), "format", "--check", "src", "tests", "bench"],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy() -> None:
    out = subprocess.run([_tool("mypy")], cwd=REPO, check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# --- no dialect name compared outside dialects/ (DESIGN §10.3) -----------------------------

DIALECT_NAMES = frozenset({"postgresql", "sqlite", "mysql", "mariadb"})
#: modules outside dialects/ allowed to branch on a dialect name, and why
DIALECT_NAME_ALLOWED = {
    "model/urls.py": "parsing a URL's scheme is where a dialect name comes from",
    "project/layouts/prisma.py": "Prisma's provider names, mapped to the dialect names they mean",
}
#: module-level tables of dialect names allowed to be looked up, and why
DIALECT_TABLES_ALLOWED = {
    ("demo/sampledata.py", "EXAMPLES"): "which databases each example's SQL is written for: "
    "data about the examples, not a difference between databases",
}


def _names_in(node: ast.AST) -> set[str]:
    """The dialect names written as string literals anywhere in ``node``."""
    return {
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in DIALECT_NAMES
    }


def _dialect_tables(tree: ast.Module, rel: str) -> set[str]:
    """Module-level names bound to a literal holding dialect names (sets, tuples, dicts)."""
    tables: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None:
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if _names_in(statement.value):
                tables |= {t.id for t in targets if isinstance(t, ast.Name)}
    return {name for name in tables if (rel, name) not in DIALECT_TABLES_ALLOWED}


def _is_lookup(node: ast.AST, is_table: Callable[[ast.AST], bool]) -> bool:
    """A lookup on a dialect table, or with a literal dialect name (``x["mysql"]``)."""
    if isinstance(node, ast.Subscript):
        return bool(_names_in(node.slice)) or is_table(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        literal = bool(node.args) and bool(_names_in(node.args[0]))
        return node.func.attr == "get" and (is_table(node.func.value) or literal)
    return False


def _dialect_branches(tree: ast.Module, rel: str) -> list[tuple[int, str]]:
    """(line, what) for every comparison, match case or lookup on a dialect name."""
    tables = _dialect_tables(tree, rel)

    def is_table(node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id in tables

    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_names_in(o) or is_table(o) for o in operands):
                found.append((node.lineno, "comparison"))
        elif isinstance(node, ast.match_case) and _names_in(node.pattern):
            found.append((node.pattern.lineno, "match case"))
        elif _is_lookup(node, is_table):
            found.append((getattr(node, "lineno", 0), "lookup"))
    return found


def test_no_dialect_name_compared_outside_dialects() -> None:
    """Every difference between databases lives in ``dialects/``: elsewhere no code compares,
    matches or looks up a dialect name; it asks the dialect (a flag or a method)."""
    package = REPO / "src" / "backout"
    problems = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith("dialects/") or rel in DIALECT_NAME_ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        problems += [f"{rel}:{line}: {what}" for line, what in _dialect_branches(tree, rel)]
    assert problems == []


# --- one identifier-quoting function per dialect --------------------------------------------

#: where identifiers are quoted: standard double quotes, and MySQL's backticks
QUOTING_HOMES = {"model/identifiers.py", "dialects/mysql/catalog.py"}
_QUOTE_DOUBLING = re.compile(
    r"""\.replace\(\s*(['"])(?:"|\\"|`)\1\s*,\s*(['"])(?:""|\\"\\"|``)\2"""
)


def test_identifiers_are_quoted_in_one_place_per_dialect() -> None:
    """A quote doubled by hand (``replace('"', '""')``, backtick doubling) is a second copy of
    the quoting rule: code calls ``Dialect.quote`` or the dialect's ``quote_identifier``."""
    package = REPO / "src" / "backout"
    copies = [
        f"{path.relative_to(package).as_posix()}:{number}"
        for path in sorted(package.rglob("*.py"))
        if path.relative_to(package).as_posix() not in QUOTING_HOMES
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _QUOTE_DOUBLING.search(line)
    ]
    assert copies == []
