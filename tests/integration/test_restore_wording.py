"""Issue 13, item 6: ``restore`` describes its schema changes in the direction it makes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import MATRIX, db_state, matrix_url, run, sql, write

PROJECT = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/002_vouchers.up.sql": """
        CREATE TABLE vouchers (id INTEGER PRIMARY KEY, code TEXT NOT NULL);
        CREATE INDEX vouchers_code_idx ON vouchers (code);
        INSERT INTO vouchers VALUES (1, 'A'), (2, 'B');
        ALTER TABLE users ADD COLUMN nickname TEXT;
    """,
    "migrations/002_vouchers.down.sql": (
        "-- backout:risk HIGH\nDROP TABLE vouchers;\nALTER TABLE users DROP COLUMN nickname;\n"
    ),
}


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


def test_restore_after_rollback_says_it_re_creates(tmp_path: Path, url: str) -> None:
    root = write(tmp_path / "p", PROJECT)
    assert run(["up"], project=root, url=url).exit_code == 0
    before_rollback = db_state(url)
    assert run(["rollback", "--yes"], project=root, url=url).exit_code == 0
    backups = json.loads(run(["backups", "--json"], project=root, url=url).stdout)["backups"]
    backup_id = backups[-1]["id"]
    result = run(["restore", backup_id, "--yes"], project=root, url=url)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Undoes" not in text and "made since" not in text
    assert 're-creates table "vouchers"' in text
    assert 're-creates column "users"."nickname"' in text
    assert " added" not in text.split("Changes the schema back", 1)[1].split("First:", 1)[0]
    assert sql(url, "SELECT count(*) FROM vouchers") == [(2,)]
    after = db_state(url)
    assert after.schema == before_rollback.schema
