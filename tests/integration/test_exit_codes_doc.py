"""Issue 13, item 8: docs/exit-codes.md's per-command table agrees with what the commands do.

Each scenario names a command and a phrase of the table; the column whose cell holds the phrase
is the exit code the docs promise, and the command, run as a user would, must exit with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO, db_state, run, write

DOC = REPO / "docs" / "exit-codes.md"

PROJECT = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/002_posts.up.sql": "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n"
    "INSERT INTO posts VALUES (1);\n",
    "migrations/002_posts.down.sql": "-- backout:risk HIGH\nDROP TABLE posts;\n",
}
UNDERSTATED = {"migrations/002_posts.down.sql": "-- backout:risk LOW\nDROP TABLE posts;\n"}
FAILS_ON_COPY = {"migrations/002_posts.down.sql": "-- backout:risk HIGH\nDROP TABLE postz;\n"}
BROKEN = {"migrations/002_posts.down.sql": "-- backout:risk HIGH\nDROP TABLEE posts;\n"}
NO_BACKUP_FOLDER = {"backout.toml": 'layout = "plain"\nbackup_dir = "backout.toml/backups"\n'}

#: (command, phrase in its row, 2 to apply the migrations first, files written after, arguments)
SCENARIOS = [
    ("rollback", "nothing to roll back", 0, {}, ["rollback", "--yes"]),
    ("rollback", "nothing to roll back", 2, {}, ["rollback", "--to", "002", "--yes"]),
    ("plan", "nothing to roll back", 0, {}, ["plan"]),
    ("up", "nothing to apply", 2, {}, ["up"]),
    ("emergency", "nothing to roll back", 2, {}, ["emergency", "--to", "002", "--yes"]),
    ("plan", "understated", 2, UNDERSTATED, ["plan"]),
    ("rollback", "understated", 2, UNDERSTATED, ["rollback", "--yes"]),
    ("plan", "fails on the schema-only copy", 2, FAILS_ON_COPY, ["plan"]),
    ("rollback", "fails on the schema-only copy", 2, FAILS_ON_COPY, ["rollback", "--yes"]),
    ("emergency", "fails on the schema-only copy", 2, FAILS_ON_COPY, ["emergency", "--to", "001"]),
    ("emergency", "understated", 2, UNDERSTATED, ["emergency", "--to", "001", "--yes"]),
    (
        "emergency",
        "backup folder is not writable",
        2,
        NO_BACKUP_FOLDER,
        ["emergency", "--to", "001"],
    ),
    ("status", "broken rollback", 2, BROKEN, ["status"]),
    ("status", "nothing needs attention", 2, {}, ["status"]),
]


def documented_codes() -> dict[str, dict[int, str]]:
    """The per-command table: command → exit code → what the cell says."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Exit codes per command", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    header = next(line for line in lines if line.startswith("| command |"))
    codes = [int(c) for c in header.strip("|").split("|")[1:]]
    table: dict[str, dict[int, str]] = {}
    for line in (line for line in lines if line.startswith("| `")):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 1 + len(codes), f"{cells[0]}: {len(cells) - 1} cells"
        for command in cells[0].replace("`", "").split(","):
            table[command.strip()] = dict(zip(codes, cells[1:], strict=True))
    return table


def test_the_table_names_every_scenario_once() -> None:
    table = documented_codes()
    for command, phrase, *_ in SCENARIOS:
        codes = [code for code, cell in table[command].items() if phrase in cell]
        assert len(codes) == 1, f"{command}: {phrase!r} is in columns {codes}"


@pytest.mark.parametrize(
    ("command", "phrase", "applied", "files", "args"),
    SCENARIOS,
    ids=[f"{s[0]}: {s[1]}" + (f" ({s[4][1]})" if len(s[4]) > 1 else "") for s in SCENARIOS],
)
def test_the_code_exits_as_documented(
    tmp_path: Path,
    sqlite_url: str,
    command: str,
    phrase: str,
    applied: int,
    files: dict[str, str],
    args: list[str],
) -> None:
    (expected,) = [c for c, cell in documented_codes()[command].items() if phrase in cell]
    root = write(tmp_path / "p", PROJECT)
    if applied:
        assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    write(root, files)
    before = db_state(sqlite_url)
    result = run(args, project=root, url=sqlite_url)
    assert result.exit_code == expected, result.output
    if expected:
        assert result.stderr.strip(), "a non-zero exit says why on stderr"
    assert db_state(sqlite_url) == before or expected == 0
