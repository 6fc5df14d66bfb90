"""Issue 15: the host histories' pure parts: compare (the reconciliation rule), writes, refusals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tests.helpers import write

from backout.dialects.base import Actor
from backout.dialects.postgres.dialect import PostgresDialect
from backout.dialects.sqlite.dialect import SqliteDialect
from backout.model.errors import HistoryError
from backout.model.urls import parse_url
from backout.project.layouts import load_project
from backout.project.migration import Project
from backout.run.host_history import (
    HostChange,
    HostEvent,
    HostHistory,
    HostRow,
    HostSetup,
    HostState,
    HostVerdict,
)
from backout.run.hosts import host_history_for
from backout.run.hosts.dbmate import DbmateHistory
from backout.run.hosts.golang_migrate import GolangMigrateHistory

NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def plain(tmp_path: Path, versions: tuple[int, ...] = (1, 2, 3, 4)) -> Project:
    files = {f"migrations/{v}_m{v}.up.sql": "SELECT 1;\n" for v in versions}
    return load_project(write(tmp_path, files))


def golang(tmp_path: Path, table: str | None = None) -> GolangMigrateHistory:
    setup = HostSetup(
        dialect=SqliteDialect(),
        project=plain(tmp_path),
        url=parse_url("sqlite:///x.db", base_dir=tmp_path),
        table=table,
    )
    return GolangMigrateHistory(setup)


def row(version: int, dirty: bool = False) -> HostState:
    return HostState(exists=True, rows=(HostRow(key=str(version), success=not dirty),))


def change(event: HostEvent, key: str, applied_after: tuple[str, ...]) -> HostChange:
    return HostChange(
        event=event,
        key=key,
        migration=None,
        applied_after=applied_after,
        started_at=NOW,
        finished_at=NOW,
        actor=Actor(user="u", host="h", pid=1),
    )


def test_the_layouts_get_their_hosts(tmp_path: Path) -> None:
    url = parse_url("sqlite:///x.db", base_dir=tmp_path)
    host = host_history_for(HostSetup(SqliteDialect(), plain(tmp_path), url))
    assert isinstance(host, GolangMigrateHistory) and isinstance(host, HostHistory)
    assert host.tool == "golang-migrate" and host.table_name == "schema_migrations"


def test_golang_agrees_with_what_backout_wrote(tmp_path: Path) -> None:
    host = golang(tmp_path)
    assert host.compare(row(3), ("1", "2", "3"), ()).agrees
    assert host.compare(HostState(exists=True), (), ()).agrees  # nothing applied: no row
    assert host.compare(row(3, dirty=True), ("1", "2"), ("3",)).agrees  # failed 3
    assert host.compare(HostState(exists=False), ("1",), ()).agrees  # no table yet
    # an out-of-order gap (2 pending, 3 applied) is what backout wrote: no disagreement
    assert host.compare(row(3), ("1", "3"), ()).agrees


def test_golang_moves_are_read_from_the_version(tmp_path: Path) -> None:
    host = golang(tmp_path)
    up = host.compare(row(4), ("1", "2"), ())
    assert [r.key for r in up.applied] == ["3", "4"] and up.not_applied == ()
    down = host.compare(row(1), ("1", "2", "3"), ())
    assert down.applied == () and down.not_applied == ("2", "3")
    emptied = host.compare(HostState(exists=True), ("1", "2"), ())
    assert emptied.not_applied == ("1", "2")
    # migrate down past a gap: the gap stays pending, it is not "applied by golang-migrate"
    gap = host.compare(row(2), ("1", "3"), ())
    assert gap.applied == () and gap.not_applied == ("3",)


def test_golang_dirty_version_is_a_failure_of_its_migration(tmp_path: Path) -> None:
    verdict = golang(tmp_path).compare(row(3, dirty=True), ("1", "2"), ())
    assert list(verdict.failed) == ["3"]
    assert "version 3 is dirty" in verdict.failed["3"]
    assert verdict.applied == () and verdict.not_applied == ()


def test_golang_writes_set_version_as_migrate(tmp_path: Path) -> None:
    host = golang(tmp_path)
    table = '"schema_migrations"'
    delete = (f"DELETE FROM {table}", ())
    insert = f"INSERT INTO {table} (version, dirty) VALUES (%s, %s)"
    assert host.writes(None, change(HostEvent.APPLY_STARTED, "3", ("1", "2"))) == [  # type: ignore[arg-type]
        delete,
        (insert, (3, True)),
    ]
    assert host.writes(None, change(HostEvent.APPLIED, "3", ("1", "2", "3"))) == [  # type: ignore[arg-type]
        delete,
        (insert, (3, False)),
    ]
    assert host.writes(None, change(HostEvent.ROLLED_BACK, "1", ())) == [delete]  # type: ignore[arg-type]
    forced = host.writes(None, change(HostEvent.RESOLVED_ROLLED_BACK, "3", ("1", "2")))  # type: ignore[arg-type]
    assert forced == [delete, (insert, (2, False))]


def test_golang_refuses_what_one_version_cannot_say(tmp_path: Path) -> None:
    host = golang(tmp_path)
    below = change(HostEvent.ROLLED_BACK, "2", ("1", "3"))
    assert "rolling back 2 while 3 stays applied" in str(host.refusal(below))
    with pytest.raises(HistoryError, match="keeps one version"):
        host.writes(None, below)  # type: ignore[arg-type]
    assert host.refusal(change(HostEvent.ROLLED_BACK, "3", ("1", "2"))) is None


def test_dbmate_compare_is_by_set(tmp_path: Path) -> None:
    project = load_project(
        write(tmp_path, {"db/migrations/1_a.sql": "-- migrate:up\nSELECT 1;\n"}), layout="dbmate"
    )
    url = parse_url("postgresql://u@h/db")
    host = DbmateHistory(HostSetup(PostgresDialect(), project, url, table="ops.history"))
    assert host.table_name == "ops.history" and host.table.sql == '"ops"."history"'
    state = HostState(exists=True, rows=(HostRow("1"), HostRow("3")))
    verdict = host.compare(state, ("1", "2"), ())
    assert verdict == HostVerdict(applied=(HostRow("3"),), not_applied=("2",))
    created = host.create_sql(("1",))
    assert created[0][0] == 'CREATE SCHEMA IF NOT EXISTS "ops"'
    assert (
        created[1][0] == 'CREATE TABLE IF NOT EXISTS "ops"."history" (version varchar PRIMARY KEY)'
    )
    assert created[2] == ('INSERT INTO "ops"."history" (version) VALUES (%s)', ("1",))
    assert host.writes(None, change(HostEvent.FAILED, "2", ("1",))) == []  # type: ignore[arg-type]
