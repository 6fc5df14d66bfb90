"""The code stays ruff- and mypy-clean and keeps its layering: checked by the test command, so CI
enforces it."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
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


# --- The layering (DESIGN.md §6): imports only go down, no loops, own modules at module top ---

SRC = REPO / "src" / "backout"

#: top-level packages (or modules) of ``backout``, highest layer first; a module may import its
#: own layer or any lower one, never a higher one
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__", "cli"),
    ("api", "pytest_plugin"),
    (
        "migrate",
        "backup",
        "rollback",
        "rehearsal",
        "generate",
        "lint",
        "emergency",
        "demo",
        "fleet",
    ),
    ("analysis",),
    ("run",),
    ("project",),
    ("dialects",),
    ("model", "__init__"),
)

#: (importing module, imported module) → why that import waits until a function runs. Keep it
#: small: a function-level import of backout's own code is a loop or an upward edge in hiding.
#: The only reason allowed: the module imports a heavy parser at import time (named here), and
#: only some commands need it.
FUNCTION_IMPORTS_ALLOWED: dict[tuple[str, str], str] = {
    ("backout.dialects.postgres.dialect", "backout.dialects.postgres.check_guard"): "pglast",
    ("backout.dialects.mysql.dialect", "backout.dialects.sqlglot.check_guard"): "sqlglot",
    ("backout.dialects.sqlite.dialect", "backout.dialects.sqlglot.check_guard"): "sqlglot",
    ("backout.dialects.postgres.dialect", "backout.dialects.postgres.effects"): "pglast",
    ("backout.dialects.mysql.dialect", "backout.dialects.mysql.effects"): "sqlglot",
    ("backout.dialects.sqlite.dialect", "backout.dialects.sqlite.effects"): "sqlglot",
    # not a parser, the same reason: threads and the fleet are loaded only with --targets FILE
    ("backout.cli.fleet_options", "backout.cli.fleet"): "the fleet (threads), --targets only",
}

#: import edges left out of the loop check, each with why. Keep it empty but for this: the
#: command modules register themselves on ``main`` (``from backout.cli import main``) while
#: cli/__init__.py imports them; once the group loads its commands by name, these edges go and
#: so must this list (test_allowlists_are_still_needed says when).
LOOP_EDGES_ALLOWED: dict[tuple[str, str], str] = {
    (f"backout.cli.{name}", "backout.cli"): "registers its commands on main"
    for name in (
        "backups",
        "demo",
        "emergency",
        "history",
        "lint",
        "migrate",
        "rehearse",
        "rollback",
    )
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@dataclass(frozen=True)
class _Import:
    source: str
    target: str
    line: int
    where: str  # "top", "type" (under TYPE_CHECKING) or "function"


def _targets(node: ast.Import | ast.ImportFrom, source: str, modules: dict[str, Path]) -> list[str]:
    """The backout modules an import statement loads (``from pkg import mod`` loads pkg.mod)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "backout"]
    base = node.module or ""
    if node.level:
        package = source.split(".")
        if not str(modules[source]).endswith("__init__.py"):
            package.pop()
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    if base.split(".")[0] != "backout":
        return []
    found = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
    if len(found) < len(node.names):
        found.append(base)
    return found


def _imports(modules: dict[str, Path]) -> list[_Import]:
    found: list[_Import] = []

    def visit(node: ast.AST, source: str, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.extend(
                    _Import(source, t, child.lineno, where)
                    for t in _targets(child, source, modules)
                )
            elif isinstance(child, ast.If) and _is_type_checking(child) and where == "top":
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), source, "type")
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), source, where)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, source, "function")
            else:
                visit(child, source, where)

    for name, path in modules.items():
        visit(ast.parse(path.read_text(), str(path)), name, "top")
    return found


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"{module}: its package is in no layer of LAYERS (tests/test_quality.py)")


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := walk(start)) is not None:
            return found
    return None


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


#: shared capability modules of the dialects layer a dialect class may load on first use
SHARED_CAPABILITIES = frozenset({"backout.dialects.orphans"})


def _loads_a_capability(i: _Import) -> bool:
    """A dialect class (``dialects/<name>/dialect.py``) loading one of its capability modules
    (its own package's, or a shared one) in the method that needs it: backups, catalog reads,
    drafts, kept copies... are loaded by the commands that use them, not by every start
    (``status`` reads no catalog). The edge stays in the loop check below."""
    parts = i.source.split(".")
    if len(parts) != 4 or parts[:2] != ["backout", "dialects"] or parts[3] != "dialect":
        return False
    own = f"backout.dialects.{parts[2]}."
    return (i.target.startswith(own) and i.target != i.source) or i.target in SHARED_CAPABILITIES


def _layering_problems(modules: dict[str, Path]) -> list[str]:
    imports = _imports(modules)
    problems = [
        f"{i.source}:{i.line} imports {i.target}, a higher layer"
        for i in imports
        if _layer(i.target) < _layer(i.source)
    ]
    problems += [
        f"{i.source}:{i.line} imports {i.target} inside a function"
        for i in imports
        if i.where == "function"
        and (i.source, i.target) not in FUNCTION_IMPORTS_ALLOWED
        and not _loads_a_capability(i)
    ]
    modules_graph: dict[str, set[str]] = {}
    packages_graph: dict[str, set[str]] = {}
    for i in imports:
        if (i.source, i.target) in LOOP_EDGES_ALLOWED:
            continue
        if i.source != i.target:
            modules_graph.setdefault(i.source, set()).add(i.target)
        if _package(i.source) != _package(i.target):
            packages_graph.setdefault(_package(i.source), set()).add(_package(i.target))
    for kind, graph in (("modules", modules_graph), ("packages", packages_graph)):
        if (cycle := _cycle(graph)) is not None:
            problems.append(f"import loop between {kind}: " + " → ".join(cycle))
    return problems


def test_layering() -> None:
    """Imports go down the layers (cli > api > capabilities > analysis > run > project >
    dialects > model), form no loop between modules or between packages, and sit at module
    top (see LAYERS and FUNCTION_IMPORTS_ALLOWED above)."""
    problems = _layering_problems(_modules())
    assert not problems, "\n".join(problems)


def test_allowlists_are_still_needed() -> None:
    """Every allowlisted import still exists (the lists only shrink)."""
    imports = _imports(_modules())
    in_functions = {(i.source, i.target) for i in imports if i.where == "function"}
    assert not set(FUNCTION_IMPORTS_ALLOWED) - in_functions
    assert not set(LOOP_EDGES_ALLOWED) - {(i.source, i.target) for i in imports}


def test_layering_catches_a_planted_loop_and_upward_import(tmp_path: Path) -> None:
    """The check itself fails on an upward import, loops, and a function-level import."""
    plants = {
        "backout.model.low": "from backout.model import urls\n\ndef f():\n    import backout.cli\n",
        "backout.run.loop_a": "from backout.run import loop_b\n",
        "backout.run.loop_b": "import backout.run.loop_a\n",
        "backout.migrate.one": "from backout.rollback.two import x\n",
        "backout.rollback.three": "from backout.migrate import four\n",
        "backout.migrate.four": "",
    }
    modules = {name: _modules()[name] for name in ("backout.cli", "backout.model.urls")}
    for name, text in plants.items():
        modules[name] = tmp_path / f"{name}.py"
        modules[name].write_text(text)
    problems = "\n".join(_layering_problems(modules))
    assert "backout.model.low:4 imports backout.cli, a higher layer" in problems
    assert "backout.model.low:4 imports backout.cli inside a function" in problems
    assert "modules: backout.run.loop_a → backout.run.loop_b → backout.run.loop_a" in problems
    assert "packages: backout.migrate → backout.rollback → backout.migrate" in problems


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


# --- every function reads in one screen (issue #14) ------------------------------------------

#: the most lines a function of src/ may span (its def line to its last line, docstring included)
MAX_FUNCTION_LINES = 70
#: (module path under src/backout, function) → why it may be longer, for now. Keep it empty.
LONG_FUNCTIONS_ALLOWED: dict[tuple[str, str], str] = {}


def _long_functions(package: Path) -> list[tuple[str, str, int]]:
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append((rel, node.name, lines))
    return found


def test_functions_fit_a_screen() -> None:
    """No function of the product is longer than a screen, but the listed ones (with a
    reason); a listed one that got short enough must leave the list."""
    found = _long_functions(REPO / "src" / "backout")
    too_long = [
        f"{rel}:{name} has {n} lines"
        for rel, name, n in found
        if (rel, name) not in LONG_FUNCTIONS_ALLOWED
    ]
    assert too_long == [], f"split these (at most {MAX_FUNCTION_LINES} lines each)"
    stale = set(LONG_FUNCTIONS_ALLOWED) - {(rel, name) for rel, name, _ in found}
    assert not stale, f"no longer long, remove from LONG_FUNCTIONS_ALLOWED: {sorted(stale)}"


def test_the_length_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"def long():\n{body}\n", encoding="utf-8")
    assert _long_functions(tmp_path) == [("m.py", "long", MAX_FUNCTION_LINES + 1)]


def test_only_a_dialect_class_loads_its_capabilities_late() -> None:
    """The capability rule admits a dialect class's own package (and the shared capabilities),
    nothing else: not another dialect's modules, not a late import from anywhere else."""

    def late(source: str, target: str) -> bool:
        return _loads_a_capability(_Import(source, target, 1, "function"))

    assert late("backout.dialects.postgres.dialect", "backout.dialects.postgres.backup")
    assert late("backout.dialects.mysql.dialect", "backout.dialects.orphans")
    assert not late("backout.dialects.postgres.dialect", "backout.dialects.mysql.backup")
    assert not late("backout.dialects.postgres.dialect", "backout.run.journal")
    assert not late("backout.dialects.postgres.backup", "backout.dialects.postgres.catalog")
    assert not late("backout.run.workspace", "backout.dialects.postgres.backup")
