"""Flyway's ``flyway_schema_history`` on SQLite, PostgreSQL and MariaDB, asserted on the database.

Real Flyway cannot be installed here (its jars come from a registry out of reach), so the
expected table shape and rows are Flyway's as its source writes them (see
``backout.run.hosts.flyway`` and docs/history.md): ``getRawCreateScript`` of each database,
``getInsertStatement``, ``SchemaHistory.calculateInstalledRank``, the checksum of
``LoadableResource.calculateChecksum`` (golden values in tests/unit/test_flyway_layout.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backout.dialects import dialect_for
from backout.dialects.base import Actor, Session
from backout.model.urls import parse_url
from backout.project.layouts import load_project
from backout.project.migration import Project
from backout.run.host_history import HostChange, HostEvent, HostSetup
from backout.run.hosts import host_history_for
from backout.run.hosts.flyway import FlywayHistory
from tests.helpers import MATRIX, matrix_url, sql, write

V1 = "CREATE TABLE users (id int);\nINSERT INTO users VALUES (1);\n"
V1_CHECKSUM = -1929710232  # by hand from Flyway's source: tests/unit/test_flyway_layout.py
V11 = "SELECT 2;\n"
V11_CHECKSUM = 798974111
FILES = {
    "db/migration/V1__create_users.sql": V1,
    "db/migration/U1__create_users.sql": "DROP TABLE users;\n",
    "db/migration/more/V1_1__second_step.sql": V11,
    "db/migration/U1_1__second_step.sql": "SELECT 3;\n",
    "db/migration/R__views.sql": "SELECT 4;\n",
    "db/migration/V3__journaled.sql": "-- backout:transaction off\nCREATE TABLE j (id int);\n",
}


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    write(tmp_path, FILES)
    return load_project(tmp_path)


@pytest.fixture
def session(url: str) -> Iterator[Session]:
    parsed = parse_url(url)
    opened = dialect_for(parsed).connect(parsed, actor=Actor.current())
    try:
        yield opened
    finally:
        opened.close()


def history(project: Project, url: str) -> FlywayHistory:
    parsed = parse_url(url)
    found = host_history_for(HostSetup(dialect=dialect_for(parsed), project=project, url=parsed))
    assert isinstance(found, FlywayHistory)
    return found


def run_writes(session: Session, writes: list[tuple[str, tuple[object, ...]]]) -> None:
    session.begin()
    for statement, params in writes:
        session.execute(statement, params or None)
    session.commit()


def change(project: Project, event: HostEvent, key: str, **kw: Any) -> HostChange:
    migration = project.by_key()[key]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return HostChange(
        event=event,
        key=key,
        migration=migration,
        applied_after=(),
        started_at=start,
        finished_at=start + dt.timedelta(milliseconds=kw.pop("ms", 42)),
        actor=Actor.current(),
        script=migration.up,
        **kw,
    )


def table_rows(url: str) -> list[tuple[Any, ...]]:
    rows = sql(
        url,
        'SELECT "installed_rank", "version", "description", "type", "script", "checksum", '
        '"execution_time", "success" FROM flyway_schema_history ORDER BY "installed_rank"'
        if not url.startswith("mysql")
        else "SELECT installed_rank, version, description, type, script, checksum, "
        "execution_time, success FROM flyway_schema_history ORDER BY installed_rank",
    )
    return [(*r[:7], bool(r[7])) for r in rows]


def installed_by(url: str) -> set[object]:
    return {r[0] for r in sql(url, "SELECT installed_by FROM flyway_schema_history")}


def test_table_is_created_as_flyway_creates_it(
    project: Project, url: str, session: Session
) -> None:
    fsh = history(project, url)
    assert not fsh.exists(session)
    run_writes(session, fsh.create_sql(()))
    assert fsh.exists(session)
    if url.startswith("postgresql"):
        columns = sql(
            url,
            "SELECT column_name, data_type, character_maximum_length, is_nullable, "
            "column_default FROM information_schema.columns "
            "WHERE table_name = 'flyway_schema_history' ORDER BY ordinal_position",
        )
        assert columns == [
            ("installed_rank", "integer", None, "NO", None),
            ("version", "character varying", 50, "YES", None),
            ("description", "character varying", 200, "NO", None),
            ("type", "character varying", 20, "NO", None),
            ("script", "character varying", 1000, "NO", None),
            ("checksum", "integer", None, "YES", None),
            ("installed_by", "character varying", 100, "NO", None),
            ("installed_on", "timestamp without time zone", None, "NO", "now()"),
            ("execution_time", "integer", None, "NO", None),
            ("success", "boolean", None, "NO", None),
        ]
        indexes = sql(
            url,
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'flyway_schema_history' ORDER BY indexname",
        )
        assert [name for name, _ in indexes] == [
            "flyway_schema_history_pk",
            "flyway_schema_history_s_idx",
        ]
        assert "(installed_rank)" in indexes[0][1] and "(success)" in indexes[1][1]
    elif url.startswith("mysql"):
        columns = sql(
            url,
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM "
            "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'flyway_schema_history' ORDER BY ORDINAL_POSITION",
        )
        assert [(c[0], c[1], c[2]) for c in columns] == [
            ("installed_rank", "int(11)", "NO"),
            ("version", "varchar(50)", "YES"),
            ("description", "varchar(200)", "NO"),
            ("type", "varchar(20)", "NO"),
            ("script", "varchar(1000)", "NO"),
            ("checksum", "int(11)", "YES"),
            ("installed_by", "varchar(100)", "NO"),
            ("installed_on", "timestamp", "NO"),
            ("execution_time", "int(11)", "NO"),
            ("success", "tinyint(1)", "NO"),
        ]
        keys = sql(
            url,
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'flyway_schema_history' "
            "ORDER BY INDEX_NAME",
        )
        assert sorted(keys) == [
            ("PRIMARY", "installed_rank"),
            ("flyway_schema_history_s_idx", "success"),
        ]
    else:
        (ddl,) = sql(url, "SELECT sql FROM sqlite_master WHERE name = 'flyway_schema_history'")
        assert '"installed_rank" INT NOT NULL PRIMARY KEY' in ddl[0]
        assert "DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now'))" in ddl[0]
        (index,) = sql(
            url, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
        assert index[0] == "flyway_schema_history_s_idx" and '("success")' in index[1]


def test_apply_rollback_and_reapply_write_flyways_rows(
    project: Project, url: str, session: Session
) -> None:
    fsh = history(project, url)
    run_writes(session, fsh.create_sql(()))
    run_writes(session, fsh.writes(session, change(project, HostEvent.APPLIED, "1", ms=7)))
    run_writes(session, fsh.writes(session, change(project, HostEvent.APPLIED, "1.1", ms=9)))
    assert table_rows(url) == [
        (1, "1", "create users", "SQL", "V1__create_users.sql", V1_CHECKSUM, 7, True),
        (2, "1.1", "second step", "SQL", "more/V1_1__second_step.sql", V11_CHECKSUM, 9, True),
    ]
    # Flyway's doGetCurrentUser: current_user, SUBSTRING_INDEX(USER(),'@',1), "" on SQLite
    expected_user = {"sqlite": "", "postgresql": "postgres", "mysql": "root"}
    assert installed_by(url) == {expected_user[parse_url(url).dialect]}
    state = fsh.read(session)
    assert [r.key for r in state.rows if r.success] == ["1", "1.1"]
    assert fsh.compare(state, ("1", "1.1"), ()).agrees

    # rollback of 1.1: its row goes, as `flyway repair` removes a version's rows
    run_writes(session, fsh.writes(session, change(project, HostEvent.ROLLED_BACK, "1.1")))
    assert [r[:2] for r in table_rows(url)] == [(1, "1")]
    assert fsh.compare(fsh.read(session), ("1",), ()).agrees

    # up again: Flyway's next rank is the last + 1
    run_writes(session, fsh.writes(session, change(project, HostEvent.APPLIED, "1.1", ms=3)))
    assert [r[:2] + r[6:] for r in table_rows(url)] == [(1, "1", 7, True), (2, "1.1", 3, True)]


def test_failed_apply_is_recorded_where_flyway_records_it(
    project: Project, url: str, session: Session
) -> None:
    fsh = history(project, url)
    run_writes(session, fsh.create_sql(()))
    failed = change(project, HostEvent.FAILED, "1", error="boom", statements=0)
    run_writes(session, fsh.writes(session, failed))
    if url.startswith("mysql"):
        # MySQL/MariaDB: no DDL transactions, so Flyway's DbMigrate records success = false
        assert table_rows(url) == [
            (1, "1", "create users", "SQL", "V1__create_users.sql", V1_CHECKSUM, 42, False)
        ]
        verdict = fsh.compare(fsh.read(session), (), ())
        assert list(verdict.failed) == ["1"]
        # resolve --rolled-back: the failed row goes, as `flyway repair` deletes it
        resolved = change(project, HostEvent.RESOLVED_ROLLED_BACK, "1")
        run_writes(session, fsh.writes(session, resolved))
        assert table_rows(url) == []
    else:
        # transactional DDL: Flyway's failed transaction was rolled back, nothing recorded
        assert table_rows(url) == []
    # a script run statement by statement (not one transaction) is recorded everywhere
    partway = change(project, HostEvent.FAILED, "3", error="boom", statements=1)
    run_writes(session, fsh.writes(session, partway))
    assert [(r[1], r[-1]) for r in table_rows(url)] == [("3", False)]


def flyway_insert(
    url: str,
    rank: int,
    version: str | None,
    desc: str,
    kind: str,
    script: str,
    checksum: int | None,
    success: bool,
) -> None:
    """A row as Flyway's own ``getInsertStatement`` writes it (installed_on: the default)."""
    q = "`" if url.startswith("mysql") else '"'
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
    sql(
        url,
        f"INSERT INTO flyway_schema_history ({cols}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (rank, version, desc, kind, script, checksum, "flyway", 11, success),
    )


def test_history_written_by_flyway_is_read_as_applied(
    project: Project, url: str, session: Session
) -> None:
    fsh = history(project, url)
    run_writes(session, fsh.create_sql(()))
    flyway_insert(url, 1, "1", "create users", "SQL", "V1__create_users.sql", V1_CHECKSUM, True)
    flyway_insert(
        url, 2, "1.1", "second step", "SQL", "more/V1_1__second_step.sql", V11_CHECKSUM, True
    )
    flyway_insert(url, 3, None, "views", "SQL", "R__views.sql", 1, True)
    state = fsh.read(session)
    verdict = fsh.compare(state, (), ())
    assert [r.key for r in verdict.applied] == ["1", "1.1"]
    assert {r.by for r in verdict.applied} == {"flyway"}
    assert all(r.applied_at is not None for r in verdict.applied)
    # the checksums Flyway recorded are the files' own: no edit to report
    by_key = project.by_key()
    recorded = fsh.checksums(session)
    assert recorded == {"1": V1_CHECKSUM, "1.1": V11_CHECKSUM}
    from backout.project.layouts.flyway import flyway_checksum

    assert all(recorded[k] == flyway_checksum(by_key[k].up.text) for k in recorded)


def test_delete_undo_and_baseline_rows_as_flyway_reads_them(
    project: Project, url: str, session: Session
) -> None:
    fsh = history(project, url)
    run_writes(session, fsh.create_sql(()))
    flyway_insert(
        url, 1, "1", "<< Flyway Baseline >>", "BASELINE", "<< Flyway Baseline >>", None, True
    )
    flyway_insert(
        url, 2, "1.1", "second step", "SQL", "more/V1_1__second_step.sql", V11_CHECKSUM, True
    )
    # recent Flyway's repair marks a version deleted with a DELETE row: no longer applied
    flyway_insert(
        url, 3, "1.1", "second step", "DELETE", "more/V1_1__second_step.sql", V11_CHECKSUM, True
    )
    assert [r.key for r in fsh.read(session).rows] == ["1"]
    # a Teams undo (UNDO_SQL) also makes it pending again
    flyway_insert(
        url, 4, "1.1", "second step", "SQL", "more/V1_1__second_step.sql", V11_CHECKSUM, True
    )
    flyway_insert(url, 5, "1.1", "second step", "UNDO_SQL", "U1_1__second_step.sql", 5, True)
    assert [r.key for r in fsh.read(session).rows] == ["1"]
    # a rollback by backout removes every row of the version, DELETE and undo rows included
    run_writes(session, fsh.writes(session, change(project, HostEvent.ROLLED_BACK, "1.1")))
    assert [r[:2] for r in table_rows(url)] == [(1, "1")]


def test_create_backfills_what_backout_applied(
    project: Project, url: str, session: Session
) -> None:
    fsh = history(project, url)
    run_writes(session, fsh.create_sql(("1", "1.1")))
    assert [r[:2] + r[5:] for r in table_rows(url)] == [
        (1, "1", V1_CHECKSUM, 0, True),
        (2, "1.1", V11_CHECKSUM, 0, True),
    ]
