"""Issue 11, ``test --all`` as fast as the same walk by hand: what a walk asks the server per
migration. Its sessions reuse connections, each reset as a new one is; it takes the run lock
once; ``status`` reads the history tables in one round trip."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

import backout.cli.rehearse  # noqa: F401  (registers check/test/generate)
from backout import api
from backout.dialects import dialect_for
from backout.dialects.base import Actor, Params, Row
from backout.dialects.pool import ConnectionPool, reusing
from backout.dialects.postgres.session import PostgresSession
from backout.migrate.apply import up
from backout.migrate.resolve import resolve
from backout.model.errors import DatabaseError
from backout.model.urls import parse_url
from backout.project.config import load_config
from backout.rollback.rollback import rollback
from backout.run.replay import scratch_workspace
from backout.run.status import compute_status
from backout.run.workspace import Workspace
from tests.helpers import copy_example, run, sql, write

PLAIN = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/001_a.up.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY);\n",
    "migrations/001_a.down.sql": "-- backout:risk HIGH\nDROP TABLE a;\n",
    "migrations/002_b.up.sql": "CREATE TABLE b (id INTEGER PRIMARY KEY);\n",
    "migrations/002_b.down.sql": "-- backout:risk HIGH\nDROP TABLE b;\n",
    "migrations/003_c.up.sql": "ALTER TABLE b ADD COLUMN c TEXT;\n",
    "migrations/003_c.down.sql": "-- backout:risk HIGH\nALTER TABLE b DROP COLUMN c;\n",
}


def _advisory_locks(pg_url: str) -> list[tuple[object, ...]]:
    return sql(
        pg_url,
        "SELECT pid, objid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )


def test_a_reused_connection_starts_as_a_new_one(pg_url: str) -> None:
    """What one session's SQL (a migration's) leaves on its connection is gone for the next
    session that reuses it: settings, temporary tables, advisory locks."""
    url = parse_url(pg_url, base_dir=Path.cwd())
    dialect = dialect_for(url)
    fresh = dialect.connect(url, actor=Actor.current(), create=False)
    try:
        (zone,) = fresh.query("SHOW TimeZone")[0]
        (check,) = fresh.query("SHOW client_connection_check_interval")[0]
    finally:
        fresh.close()
    pool = ConnectionPool(2)
    try:
        with reusing(pool):
            first = dialect.connect(url, actor=Actor.current(), create=False)
            (pid,) = first.query("SELECT pg_backend_pid()")[0]
            other_zone = "Pacific/Chatham" if zone != "Pacific/Chatham" else "Asia/Tokyo"
            first.execute(f"SET TimeZone = '{other_zone}'")
            first.execute("SET client_connection_check_interval = 0")
            first.execute("SET search_path TO pg_catalog")
            first.execute("CREATE TEMP TABLE left_behind (id int)")
            first.query("SELECT pg_advisory_lock(424242)")
            first.close()  # kept in the pool
            second = dialect.connect(url, actor=Actor.current(), create=False)
            try:
                assert second.query("SELECT pg_backend_pid()")[0][0] == pid  # reused
                assert second.query("SHOW TimeZone")[0][0] == zone
                assert second.query("SHOW client_connection_check_interval")[0][0] == check
                assert second.query("SHOW search_path")[0][0] == '"$user", public'
                assert second.query("SELECT to_regclass('pg_temp.left_behind')")[0][0] is None
            finally:
                second.close()
        assert (pid, 424242) not in _advisory_locks(pg_url)
    finally:
        pool.close()


def _counting(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[list[str]]]:
    """Every query a session sends alone, and every batch it sends at once."""
    alone: list[str] = []
    batches: list[list[str]] = []
    real_query, real_many = PostgresSession.query, PostgresSession.query_many

    def query(self: PostgresSession, sql: str, params: Params = None) -> list[Row]:
        if self._ahead is None or not any(k[0] == sql for k in self._ahead):
            alone.append(sql)
        return real_query(self, sql, params)

    def query_many(self: PostgresSession, queries: list[tuple[str, Params]]) -> list[list[Row]]:
        batches.append([q for q, _ in queries])
        return real_many(self, queries)

    monkeypatch.setattr(PostgresSession, "query", query)
    monkeypatch.setattr(PostgresSession, "query_many", query_many)
    return alone, batches


def test_a_walk_takes_the_run_lock_once(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write(tmp_path / "p", PLAIN)
    alone, _ = _counting(monkeypatch)
    result = run(["test", "--all", "--no-smoke", "--json"], project=root, url=pg_url)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [m["status"] for m in doc["migrations"]] == ["passed"] * 3, doc
    # three migrations, each applied, rolled back and applied again: the lock is taken once
    # for the walk (backout's key, and the host tool's with it)
    keys = 1 + len(Workspace.open(load_config(root, url=pg_url)).host_locks())
    assert sum("pg_try_advisory_lock" in q for q in alone) == keys, alone


def test_holding_the_run_lock_on_a_private_database(tmp_path: Path, pg_url: str) -> None:
    """Held for the block by one backend; the commands inside use it and leave it held;
    released at the end. On a database others can reach, each command takes its own."""
    root = write(tmp_path / "p", PLAIN)
    ws = Workspace.open(load_config(root, url=pg_url))
    with ws.holding_run_lock():
        assert _advisory_locks(pg_url) == []  # not private: nothing held for the block
    with scratch_workspace(ws) as scratch:
        assert scratch.url.database is not None
        copy = pg_url.rsplit("/", 1)[0] + "/" + scratch.url.database
        with scratch.holding_run_lock():
            held = _advisory_locks(copy)
            assert len(held) == 1 + len(scratch.host_locks())
            assert len({pid for pid, _ in held}) == 1
            up(scratch, to="002_b")
            assert _advisory_locks(copy) == held  # the block's lock, still held
            assert sql(copy, "SELECT count(*) FROM b")[0][0] == 0
        assert _advisory_locks(copy) == []


def test_status_reads_the_history_in_one_round_trip(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_example("vouchers", tmp_path)
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    alone, batches = _counting(monkeypatch)
    result = api.status(load_config(root, url=pg_url))
    assert [e.state.value for e in result.report.entries] == ["applied", "applied"]
    history = [b for b in batches if any("_prisma_migrations" in q for q in b)]
    assert len(history) == 1 and len(history[0]) == 3, batches
    assert not any("_prisma_migrations" in q or "schema_version" in q for q in alone), alone


def test_reading_ahead_a_query_that_fails(pg_url: str) -> None:
    """One query read ahead fails: the others still answer, and the failing one fails where
    it is asked; inside a transaction nothing is read ahead (a failure would abort it)."""
    url = parse_url(pg_url, base_dir=Path.cwd())
    session = dialect_for(url).connect(url, actor=Actor.current(), create=False)
    try:
        session.execute("CREATE TABLE ahead (id int)")
        session.execute("INSERT INTO ahead VALUES (7)")
        reads: list[tuple[str, Params]] = [
            ("SELECT id FROM ahead", None),
            ("SELECT id FROM missing_table", None),
        ]
        with session.reading_ahead(reads):
            assert session.query("SELECT id FROM ahead") == [(7,)]
            with pytest.raises(DatabaseError, match="missing_table"):
                session.query("SELECT id FROM missing_table")
        assert session.query("SELECT id FROM ahead") == [(7,)]
        reads = [("SELECT id FROM ahead", None), ("SELECT count(*) FROM ahead", None)]
        session.begin()
        with session.reading_ahead(reads):
            assert session._ahead is None
            session.execute("INSERT INTO ahead VALUES (8)")
            assert session.query("SELECT count(*) FROM ahead") == [(2,)]
        session.rollback()
        with session.reading_ahead(reads):
            assert session._ahead is not None
            session.execute("INSERT INTO ahead VALUES (9)")
            # read before the insert: what was committed when the block began
            assert session.query("SELECT count(*) FROM ahead") == [(1,)]
        assert session.query("SELECT count(*) FROM ahead") == [(2,)]
    finally:
        session.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM ahead").fetchone() == (2,)


def test_remembered_status_entries_are_those_computed_afresh(tmp_path: Path, pg_url: str) -> None:
    """A workspace keeps the status entries it computed (a walk computes the status after
    every change of one ledger row): after each change, they are what the ledger says now,
    also for a migration whose rows did not change but whose order did."""
    root = write(tmp_path / "p", PLAIN)
    ws = Workspace.open(load_config(root, url=pg_url))

    def status() -> dict[str, tuple[str, bool, int]]:
        with ws.session() as session:
            remembered = ws.read_status(session)
            rows = ws.ledger.rows(session)
        fresh = compute_status(ws.project, rows, ledger_exists=True)
        assert remembered.entries == fresh.entries
        return {e.id: (e.state.value, e.out_of_order, e.attempts) for e in remembered.entries}

    up(ws)
    assert status()["003_c"] == ("applied", False, 1)
    rollback(ws, to="001_a", backup_mode="none", accept_data_loss=True, simulate=False)
    assert status()["002_b"] == ("rolled_back", False, 1)
    resolve(ws, "003_c", applied=True)
    # 002's rows did not change; 003 applied after it makes it out of order
    assert status()["002_b"] == ("rolled_back", True, 1)
    assert status()["003_c"] == ("applied", False, 2)
