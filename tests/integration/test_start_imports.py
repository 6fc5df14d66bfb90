"""Issue 14, a fast start: ``backout status`` imports what it needs to read the state, and
nothing a command that plans, renders tables or changes the database needs. Each module named
here cost it time on import before (bench/README.md, issue 14); a change that brings one back
fails here rather than only in a benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run, write

PROJECT = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/002_pets.up.sql": "CREATE TABLE pets (id INTEGER PRIMARY KEY);\n",
    "migrations/002_pets.down.sql": "-- backout:risk HIGH\nDROP TABLE pets;\n",
}

#: never needed by ``status``: the table renderer, the SQL parsers (a warm ``status`` reads
#: its verdicts from .backout/cache), and the capabilities that plan, simulate or change
NOT_FOR_STATUS = (
    "rich",
    "pglast",
    "sqlglot",
    "dotenv",
    "backout.analysis.simulate",
    "backout.analysis.impact",
    "backout.analysis.risk",
    "backout.analysis.checks",
    "backout.api.documents",
    "backout.rollback",
    "backout.backup",
    "backout.rehearsal",
    "backout.generate",
    "backout.lint",
    "backout.emergency",
    "backout.dialects.postgres.effects",
    "backout.dialects.postgres.check_guard",
    "backout.dialects.sqlglot",
    "backout.dialects.sqlite.effects",
    # the schema snapshot's classes (17 of them) and what reads, dumps, copies or drafts one
    "backout.model.schema",
    "backout.dialects.orphans",
    "backout.dialects.postgres.backup",
    "backout.dialects.postgres.catalog",
    "backout.dialects.postgres.ddl",
    "backout.dialects.postgres.kept",
    "backout.dialects.postgres.schema_dump",
    "backout.dialects.sqlite.backup",
    "backout.dialects.sqlite.catalog",
    "backout.dialects.sqlite.ddl",
)


def _loaded_by_status(root: Path, url: str, *flags: str, before: str = "") -> tuple[str, list[str]]:
    """(what ``backout status`` printed, the modules of NOT_FOR_STATUS it loaded), in a fresh
    interpreter as the command line runs it (after the code ``before``)."""
    code = (
        "import json, sys\n"
        f"{before}\n"
        "from backout.cli import main\n"
        "try:\n"
        f"    main(['status', *{list(flags)!r}, '-C', {str(root)!r}, '--url', {url!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"banned = {NOT_FOR_STATUS!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if any(m == b or m.startswith(b + '.') for b in banned))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    *printed, last = done.stdout.splitlines()
    return "\n".join(printed), json.loads(last)


@pytest.mark.parametrize("server", ["sqlite", "postgresql"])
def test_status_imports_nothing_it_does_not_need(
    tmp_path: Path, server: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("sqlite_url" if server == "sqlite" else "pg_url")
    root = write(tmp_path / "p", PROJECT)
    assert run(["up", "--to", "001_users"], project=root, url=url).exit_code == 0
    first, _ = _loaded_by_status(root, url)  # judges (parses) the scripts, saves verdicts
    assert "001_users" in first and "002_pets" in first
    for flags in ((), ("--json",)):
        printed, loaded = _loaded_by_status(root, url, *flags)
        assert loaded == [], flags
        assert "002_pets" in printed


def test_the_check_sees_a_module_status_does_not_need(tmp_path: Path, sqlite_url: str) -> None:
    """The check can fail: a run that also loads the simulation and rich is caught."""
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    _, loaded = _loaded_by_status(
        root, sqlite_url, before="import backout.analysis.simulate, rich.text"
    )
    assert "backout.analysis.simulate" in loaded and "rich.text" in loaded
