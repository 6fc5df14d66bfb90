"""Flyway's repeatable ``R__`` migrations: ``up`` runs the pending and outdated ones after the
versioned ones and writes Flyway's row for each, so that real ``flyway migrate`` has nothing
left to do (``MigrationInfoServiceImpl``: a repeatable is up to date when the latest applied
row of its description has the file's checksum). SQLite and PostgreSQL; Flyway's table is
asserted row by row, and the database's objects, afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backout.project.layouts.flyway import flyway_checksum
from tests.helpers import matrix_url, run, sql, write

V1 = "CREATE TABLE users (id int);\nINSERT INTO users VALUES (1);\n"
V1_CHECKSUM = -1929710232
V2 = "CREATE TABLE items (id int);\n"
VIEWS = "DROP VIEW IF EXISTS v;\nCREATE VIEW v AS SELECT id AS x FROM users;\n"
FIRST = "CREATE TABLE IF NOT EXISTS first_run (id int);\n"
FILES = {
    "db/migration/V1__create_users.sql": V1,
    "db/migration/U1__create_users.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "db/migration/V2__add_items.sql": V2,
    "db/migration/U2__add_items.sql": "-- backout:risk HIGH\nDROP TABLE items;\n",
    # Flyway runs repeatables by description: "a first" before "views"
    "db/migration/R__views.sql": VIEWS,
    "db/migration/sub/R__a_first.sql": FIRST,
}
ROLLBACK = ["rollback", "--yes", "--backup", "none", "--i-accept-data-loss"]
VERSIONED = [
    (1, "1", "create users", "SQL", "V1__create_users.sql", V1_CHECKSUM, True),
    (2, "2", "add items", "SQL", "V2__add_items.sql", flyway_checksum(V2), True),
]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


def rows(url: str) -> list[tuple[Any, ...]]:
    cols = ", ".join(
        f'"{c}"' for c in ("installed_rank", "version", "description", "type", "script", "checksum")
    )
    found = sql(
        url,
        f'SELECT {cols}, "success", "execution_time", "installed_by" FROM flyway_schema_history '
        'ORDER BY "installed_rank"',
    )
    for row in found:
        assert int(row[7]) >= 0 and row[8] is not None
    return [(*r[:6], bool(r[6])) for r in found]


def repeatable_states(tmp_path: Path, url: str) -> dict[str, str]:
    result = run(["status", "--json"], project=tmp_path, url=url)
    document = json.loads(result.output)
    return {r["script"]: r["state"] for r in document["repeatables"]}


def test_up_runs_repeatables_after_the_versioned_ones_once(tmp_path: Path, url: str) -> None:
    write(tmp_path, FILES)
    assert repeatable_states(tmp_path, url) == {
        "db/migration/sub/R__a_first.sql": "pending",
        "db/migration/R__views.sql": "pending",
    }
    result = run(["up"], project=tmp_path, url=url)
    assert result.exit_code == 0, result.output
    assert "2 repeatable(s)" in result.output
    assert rows(url) == [
        *VERSIONED,
        (3, None, "a first", "SQL", "sub/R__a_first.sql", flyway_checksum(FIRST), True),
        (4, None, "views", "SQL", "R__views.sql", flyway_checksum(VIEWS), True),
    ]
    assert sql(url, "SELECT x FROM v") == [(1,)]
    assert set(repeatable_states(tmp_path, url).values()) == {"up to date"}

    again = run(["up"], project=tmp_path, url=url)
    assert again.exit_code == 0, again.output
    assert "Nothing to apply" in again.output
    assert len(rows(url)) == 4


def test_an_edited_repeatable_runs_again_with_a_new_row(tmp_path: Path, url: str) -> None:
    write(tmp_path, FILES)
    assert run(["up"], project=tmp_path, url=url).exit_code == 0
    edited = "DROP VIEW IF EXISTS v;\nCREATE VIEW v AS SELECT id + 1 AS x FROM users;\n"
    write(tmp_path, {"db/migration/R__views.sql": edited})
    status = run(["status"], project=tmp_path, url=url)
    assert "R__views.sql: outdated" in status.output, status.output
    assert "R__a_first.sql: up to date" in status.output
    assert repeatable_states(tmp_path, url)["db/migration/R__views.sql"] == "outdated"

    result = run(["up"], project=tmp_path, url=url)
    assert result.exit_code == 0, result.output
    assert rows(url)[4:] == [
        (5, None, "views", "SQL", "R__views.sql", flyway_checksum(edited), True)
    ]
    assert len(rows(url)) == 5  # the earlier run's row stays, as Flyway keeps it
    assert sql(url, "SELECT x FROM v") == [(2,)]


def test_dry_run_shows_repeatables_and_changes_nothing(tmp_path: Path, url: str) -> None:
    write(tmp_path, FILES)
    assert run(["up", "--to", "V1__create_users"], project=tmp_path, url=url).exit_code == 0
    assert rows(url) == VERSIONED[:1]  # a partial `up` leaves repeatables to a full one
    result = run(["up", "--dry-run"], project=tmp_path, url=url)
    assert result.exit_code == 0, result.output
    assert "repeatable db/migration/R__views.sql (pending)" in result.output
    assert "CREATE VIEW v AS SELECT id AS x FROM users" in result.output
    assert result.output.index("V2__add_items") < result.output.index("R__a_first.sql")
    assert rows(url) == VERSIONED[:1]
    with pytest.raises(Exception, match=r'no such table: v|"v" does not exist'):
        sql(url, "SELECT x FROM v")

    as_json = run(["up", "--dry-run", "--json"], project=tmp_path, url=url)
    document = json.loads(as_json.output)
    assert [r["id"] for r in document["repeatables"]] == [
        "db/migration/sub/R__a_first.sql",
        "db/migration/R__views.sql",
    ]


def test_a_failing_repeatable_fails_up_as_a_failed_migration(tmp_path: Path, url: str) -> None:
    bad = "CREATE TABLE bad (id int);\nSELECT * FROM nope;\n"
    write(tmp_path, {**FILES, "db/migration/R__views.sql": bad})
    result = run(["up"], project=tmp_path, url=url)
    assert result.exit_code == 4, result.output
    assert "nope" in result.output
    # the versioned ones and the repeatable before it stay; the failed one rolled back with
    # its transaction: Flyway records nothing for it (DbMigrate), and neither does backout
    assert rows(url) == [
        *VERSIONED,
        (3, None, "a first", "SQL", "sub/R__a_first.sql", flyway_checksum(FIRST), True),
    ]
    assert sql(url, "SELECT count(*) FROM items") == [(0,)]
    with pytest.raises(Exception, match=r'no such table: bad|"bad" does not exist'):
        sql(url, "SELECT * FROM bad")
    assert repeatable_states(tmp_path, url)["db/migration/R__views.sql"] == "pending"


def test_a_failed_journaled_repeatable_gets_flyways_failed_row(tmp_path: Path, url: str) -> None:
    bad = "-- backout:transaction off\nCREATE TABLE bad (id int);\nSELECT * FROM nope;\n"
    write(tmp_path, {**FILES, "db/migration/R__views.sql": bad})
    result = run(["up"], project=tmp_path, url=url)
    assert result.exit_code == 4, result.output
    assert rows(url)[3:] == [(4, None, "views", "SQL", "R__views.sql", flyway_checksum(bad), False)]
    assert sql(url, "SELECT count(*) FROM bad") == [(0,)]  # its first statement stays
    status = run(["status"], project=tmp_path, url=url)
    assert status.exit_code == 1 and "R__views.sql: failed" in status.output
    again = run(["up"], project=tmp_path, url=url)
    assert again.exit_code != 0 and "failed run of repeatable" in again.output
    assert len(rows(url)) == 4


def test_rollback_leaves_repeatables_and_their_rows(tmp_path: Path, url: str) -> None:
    write(tmp_path, FILES)
    assert run(["up"], project=tmp_path, url=url).exit_code == 0
    result = run(ROLLBACK, project=tmp_path, url=url)
    assert result.exit_code == 0, result.output
    assert [r[:3] for r in rows(url)] == [
        (1, "1", "create users"),
        (3, None, "a first"),
        (4, None, "views"),
    ]
    assert sql(url, "SELECT x FROM v") == [(1,)]  # not undone
    assert run(["up"], project=tmp_path, url=url).exit_code == 0
    # V2 applied again; the unchanged repeatables are not
    assert [r[:3] for r in rows(url)][3:] == [(5, "2", "add items")]
