"""Bad input gets one clear line naming the file, line or object, a distinct exit code, and
leaves the database exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import db_state, run, write

GOOD = {
    "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
}

CASES: list[tuple[str, dict[str, str | bytes], int, str]] = [
    ("no migrations folder", {"README.md": "hi"}, 2, "no migrations folder found"),
    (
        "ambiguous layout",
        {**GOOD, "prisma/migrations/20240101000000_x/migration.sql": "SELECT 1;"},
        2,
        "ambiguous layout: found plain (migrations), prisma (prisma/migrations)",
    ),
    (
        "duplicate version",
        {**GOOD, "migrations/001_other.up.sql": "SELECT 1;"},
        2,
        "two migrations share version 001: 001_other and 001_users",
    ),
    (
        "orphan rollback",
        {**GOOD, "migrations/002_gone.down.sql": "SELECT 1;"},
        2,
        "migrations/002_gone.down.sql: rollback for migration '002_gone', which does not exist",
    ),
    (
        "malformed directive",
        {**GOOD, "migrations/001_users.down.sql": "-- backout:risk EXTREME\n"},
        2,
        "migrations/001_users.down.sql:1: risk must be one of NONE, LOW, MEDIUM, HIGH",
    ),
    (
        "non-UTF-8 file",
        {**GOOD, "migrations/002_latin1.up.sql": b"SELECT 1;\n-- caf\xe9\n"},
        2,
        "migrations/002_latin1.up.sql:2: not valid UTF-8",
    ),
    (
        "unrecognised sql file",
        {**GOOD, "migrations/notes.sql": "SELECT 1;"},
        2,
        "migrations/notes.sql: unrecognised SQL file",
    ),
    (
        "bad config key",
        {**GOOD, "backout.toml": 'layot = "plain"\n'},
        2,
        "backout.toml: unknown setting(s): layot",
    ),
]


@pytest.mark.parametrize(
    ("files", "code", "message"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
@pytest.mark.parametrize("command", [["status"], ["up"]])
def test_bad_project(
    tmp_path: Path,
    sqlite_url: str,
    files: dict[str, str | bytes],
    code: int,
    message: str,
    command: list[str],
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for rel, content in files.items():
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    before = db_state(sqlite_url)
    result = run(command, project=project, url=sqlite_url)
    assert result.exit_code == code, result.output + result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ")
    assert message in first
    assert db_state(sqlite_url) == before


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_syntax_error_is_refused_before_touching_the_database(
    tmp_path: Path, sqlite_url: str, dry_run: list[str]
) -> None:
    project = write(
        tmp_path,
        {**GOOD, "migrations/002_typo.up.sql": "SELECT 1;\n\nCREAT TABLE x (id INTEGER);\n"},
    )
    result = run(["up", *dry_run], project=project, url=sqlite_url)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: migrations/002_typo.up.sql:3: syntax error")
    assert db_state(sqlite_url).schema == "(no file)"  # not even created


def test_dangling_symlink_is_an_unreadable_file(tmp_path: Path, sqlite_url: str) -> None:
    project = write(tmp_path, GOOD)
    (project / "migrations/002_link.up.sql").symlink_to(tmp_path / "nowhere.sql")
    result = run(["status"], project=project, url=sqlite_url)
    assert result.exit_code == 2
    assert "migrations/002_link.up.sql: cannot read file" in result.stderr


@pytest.mark.postgres
def test_unreachable_database_masks_password(tmp_path: Path, pg_admin_url: str) -> None:
    project = write(tmp_path, GOOD)
    url = "postgresql://app:hunter2-secret@127.0.0.1:1/nowhere"
    for command in (["status"], ["up"], ["up", "--dry-run"]):
        result = run(command, project=project, url=url)
        assert result.exit_code == 4, result.stderr
        assert "cannot connect to postgresql://app:***@127.0.0.1:1/nowhere" in result.stderr
        assert "hunter2" not in result.output + result.stderr


@pytest.mark.postgres
def test_unknown_role_masks_password(tmp_path: Path, pg_admin_url: str) -> None:
    project = write(tmp_path, GOOD)
    base = pg_admin_url.split("@", 1)[1]
    url = f"postgresql://no_such_role:pa%24%24word@{base}"
    result = run(["status"], project=project, url=url)
    assert result.exit_code == 4
    assert "no_such_role" in result.stderr
    assert "pa$$word" not in result.stderr and "pa%24%24word" not in result.stderr


def test_unwritable_sqlite_folder(tmp_path: Path) -> None:
    project = write(tmp_path, GOOD)
    result = run(["up"], project=project, url="sqlite:////no/such/folder/x.db")
    assert result.exit_code == 4
    assert "folder /no/such/folder does not exist" in result.stderr


def test_conflicting_resolve_flags(tmp_path: Path, sqlite_url: str) -> None:
    project = write(tmp_path, GOOD)
    result = run(["resolve", "001"], project=project, url=sqlite_url)
    assert result.exit_code == 2
    assert "say either --applied or --rolled-back" in result.stderr
