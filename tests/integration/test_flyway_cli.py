"""``backout up`` / ``rollback`` / ``status`` on a Flyway project, through the CLI, on SQLite,
PostgreSQL and MariaDB: Flyway's ``flyway_schema_history`` is asserted row by row afterwards.

The expected rows are Flyway's as its source writes them (docs/history.md, "Flyway"); real
Flyway cannot run here. The checksums are the golden ones of tests/unit/test_flyway_layout.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backout.model.urls import parse_url
from tests.helpers import MATRIX, matrix_url, run, sql, write

V1 = "CREATE TABLE users (id int);\nINSERT INTO users VALUES (1);\n"
V1_CHECKSUM = -1929710232
V11 = "CREATE TABLE items (id int);\r\n"
FILES = {
    "db/migration/V1__create_users.sql": V1,
    "db/migration/U1__create_users.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "db/migration/more/V1_1__add_items.sql": V11,
    "db/migration/U1_1__add_items.sql": "-- backout:risk HIGH\nDROP TABLE items;\n",
    "db/migration/R__views.sql": "CREATE VIEW v AS SELECT 1 AS x;\n",
}
R_VIEWS = "db/migration/R__views.sql"
ROLLBACK = ["rollback", "--yes", "--backup", "none", "--i-accept-data-loss"]


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


def rows(url: str) -> list[tuple[Any, ...]]:
    q = "`" if parse_url(url).dialect == "mysql" else '"'
    cols = ", ".join(
        f"{q}{c}{q}"
        for c in ("installed_rank", "version", "description", "type", "script", "checksum")
    )
    found = sql(
        url,
        f"SELECT {cols}, {q}success{q}, {q}execution_time{q} FROM flyway_schema_history "
        f"ORDER BY {q}installed_rank{q}",
    )
    for row in found:
        assert int(row[7]) >= 0
    return [(*r[:6], bool(r[6])) for r in found]


def tables(url: str) -> set[str]:
    dialect = parse_url(url).dialect
    if dialect == "sqlite":
        found = sql(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
    elif dialect == "mysql":
        found = sql(
            url, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
        )
    else:
        found = sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(r[0]) for r in found} & {"users", "items", "bad"}


def test_up_rollback_up_keep_flyways_history(tmp_path: Path, url: str) -> None:
    from backout.project.layouts.flyway import flyway_checksum

    write(tmp_path, FILES)
    v11 = flyway_checksum(V11)
    views = (3, None, "views", "SQL", "R__views.sql", flyway_checksum(FILES[R_VIEWS]), True)
    assert run(["up"], project=tmp_path, url=url).exit_code == 0
    assert tables(url) == {"users", "items"}
    assert rows(url) == [
        (1, "1", "create users", "SQL", "V1__create_users.sql", V1_CHECKSUM, True),
        (2, "1.1", "add items", "SQL", "more/V1_1__add_items.sql", v11, True),
        views,  # the repeatable, after the versioned ones (tests/.../test_flyway_repeatables.py)
    ]
    status = run(["status", "--json"], project=tmp_path, url=url)
    assert status.exit_code == 0, status.output
    document = json.loads(status.output)
    assert document["repeatables"] == [
        {"script": R_VIEWS, "description": "views", "checksum": views[5], "state": "up to date"}
    ]
    assert [m["state"] for m in document["migrations"]] == ["applied", "applied"]

    result = run(ROLLBACK, project=tmp_path, url=url)
    assert result.exit_code == 0, result.output
    assert tables(url) == {"users"}
    assert rows(url) == [
        (1, "1", "create users", "SQL", "V1__create_users.sql", V1_CHECKSUM, True),
        views,
    ]

    assert run(["up"], project=tmp_path, url=url).exit_code == 0
    assert tables(url) == {"users", "items"}
    assert [r[:2] for r in rows(url)] == [(1, "1"), (3, None), (4, "1.1")]


def test_a_failed_migration_is_recorded_as_flyway_records_it(tmp_path: Path, url: str) -> None:
    write(
        tmp_path,
        {**FILES, "db/migration/V2__bad.sql": "CREATE TABLE bad (id int);\nSELECT * FROM nope;\n"},
    )
    result = run(["up"], project=tmp_path, url=url)
    assert result.exit_code == 4, result.output
    failed = [r for r in rows(url) if r[1] == "2"]
    if parse_url(url).dialect == "mysql":
        # no DDL transactions: Flyway's DbMigrate writes success = false
        assert failed == [(3, "2", "bad", "SQL", "V2__bad.sql", failed[0][5], False)]
        assert tables(url) == {"users", "items", "bad"}
        # resolve --rolled-back deletes the failed row, as `flyway repair` does
        sql(url, "DROP TABLE bad")
        resolved = run(["resolve", "V2__bad", "--rolled-back"], project=tmp_path, url=url)
        assert resolved.exit_code == 0, resolved.output
        assert [r[1] for r in rows(url)] == ["1", "1.1"]
    else:
        # rolled back with its transaction: Flyway records nothing
        assert failed == []
        assert tables(url) == {"users", "items"}


def test_history_written_by_flyway_is_read_as_applied(tmp_path: Path, url: str) -> None:
    from backout.project.layouts.flyway import flyway_checksum
    from backout.run.hosts.flyway import FlywayHistory

    write(tmp_path, FILES)
    # what `flyway migrate` leaves: its table, its rows, the migrations' effects
    dialect = parse_url(url).dialect
    q = "`" if dialect == "mysql" else '"'
    from backout.dialects import dialect_for
    from backout.project.layouts import load_project
    from backout.run.host_history import HostSetup

    parsed = parse_url(url)
    fsh = FlywayHistory(
        HostSetup(dialect=dialect_for(parsed), project=load_project(tmp_path), url=parsed)
    )
    for statement, _ in fsh.create_sql(()):
        sql(url, statement)
    cols = ", ".join(
        f"{q}{c}{q}"
        for c in (
            "installed_rank",
            "version",
            "description",
            "type",
            "script",
            "checksum",
            "installed_by",
            "execution_time",
            "success",
        )
    )
    insert = (
        f"INSERT INTO flyway_schema_history ({cols}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    sql(
        url,
        insert,
        (1, "1", "create users", "SQL", "V1__create_users.sql", V1_CHECKSUM, "ci", 12, True),
    )
    sql(
        url,
        insert,
        (
            2,
            "1.1",
            "add items",
            "SQL",
            "more/V1_1__add_items.sql",
            flyway_checksum(V11),
            "ci",
            8,
            True,
        ),
    )
    sql(
        url,
        insert,
        (
            3,
            None,
            "views",
            "SQL",
            "R__views.sql",
            flyway_checksum(FILES["db/migration/R__views.sql"]),
            "ci",
            3,
            True,
        ),
    )
    sql(url, "CREATE TABLE users (id int)")
    sql(url, "CREATE TABLE items (id int)")

    status = run(["status", "--json"], project=tmp_path, url=url)
    assert status.exit_code == 0, status.output  # nothing edited, failed or missing
    migrations = json.loads(status.output)["migrations"]
    assert [(m["state"], m["edited"]) for m in migrations] == [("applied", False)] * 2
    up = run(["up"], project=tmp_path, url=url)
    assert up.exit_code == 0 and len(rows(url)) == 3

    result = run(ROLLBACK, project=tmp_path, url=url)
    assert result.exit_code == 0, result.output
    assert tables(url) == {"users"}
    assert [r[:4] for r in rows(url)] == [
        (1, "1", "create users", "SQL"),
        (3, None, "views", "SQL"),
    ]
