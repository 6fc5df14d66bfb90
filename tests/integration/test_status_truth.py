"""Issue 13, items 4 and 7: ``status`` says what is true about failures and broken scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import db_state, run, write

PROJECT = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


def test_broken_rollback_and_partial_show_in_status(tmp_path: Path, url: str) -> None:
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=url).exit_code == 0
    write(
        root,
        {
            "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLEE users;\n",
            "migrations/001_users.down.wipe.sql": "-- backout:risk HIGH\nDELETE FROM users WHERE;",
        },
    )
    before = db_state(url)
    result = run(["status"], project=root, url=url)
    assert result.exit_code == 1, result.output
    assert "migrations/001_users.down.sql (broken)" in result.output
    assert "broken rollback: migrations/001_users.down.sql:2:" in result.output
    assert "broken rollback: migrations/001_users.down.wipe.sql:2:" in result.output
    # the same error `rollback` gives
    rollback = run(["rollback", "--yes"], project=root, url=url)
    assert rollback.exit_code == 2
    error = rollback.stderr.splitlines()[0].removeprefix("error: ")
    assert error in result.output
    document = json.loads(run(["status", "--json"], project=root, url=url).stdout)
    (entry,) = document["migrations"]
    assert entry["rollback"]["error"] == error
    assert entry["partials"][0]["error"].startswith("migrations/001_users.down.wipe.sql:2:")
    assert document["summary"]["broken_scripts"] == 2
    assert db_state(url) == before


def test_sound_scripts_exit_0(tmp_path: Path, sqlite_url: str) -> None:
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(["status"], project=root, url=sqlite_url)
    assert result.exit_code == 0 and "broken" not in result.output


def test_a_failure_backout_recorded_left_nothing(tmp_path: Path, url: str) -> None:
    root = write(
        tmp_path / "p",
        {
            **PROJECT,
            "migrations/002_bad.up.sql": (
                "ALTER TABLE users ADD COLUMN nickname TEXT;\nALTER TABLE nope ADD COLUMN x INT;\n"
            ),
        },
    )
    assert run(["up"], project=root, url=url).exit_code == 4
    result = run(["status"], project=root, url=url)
    assert result.exit_code == 1
    assert "backout ran it in one transaction and rolled that back: no change of it remains" in (
        result.output
    )
    document = json.loads(run(["status", "--json"], project=root, url=url).stdout)
    remains = document["migrations"][1]["remains"]
    assert remains["rolled_back_by_backout"] is True and remains["nothing_remains"] is True
