"""Issue 13, item 10: ``history`` lists events in the order they happened, emergencies too."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run, write

PROJECT = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/002_posts.up.sql": "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n",
    "migrations/002_posts.down.sql": "-- backout:risk HIGH\nDROP TABLE posts;\n",
}


def test_emergency_events_are_in_order(tmp_path: Path, sqlite_url: str) -> None:
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    result = run(["emergency", "--to", "001", "--yes"], project=root, url=sqlite_url)
    assert result.exit_code == 0, result.output
    assert run(["up"], project=root, url=sqlite_url).exit_code == 0
    events = json.loads(run(["history", "--json"], project=root, url=sqlite_url).stdout)["events"]
    started = [e["started_at"] for e in events]
    assert started == sorted(started), started
    names = [e["event"] for e in events]
    # the emergency began before the rollback it ran, and both before the next apply
    assert names[-3:] == ["emergency", "rollback", "apply"], names
    table = run(["history"], project=root, url=sqlite_url).stdout.splitlines()
    whens = [line.split("  ")[1] for line in table[1:] if line.strip()]
    assert whens == sorted(whens)
