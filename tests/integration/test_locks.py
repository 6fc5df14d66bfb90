"""The run lock and lock timeouts: fail fast, name the holder, change nothing."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

import psycopg
import pytest

from backout.dialects.postgres.dialect import BACKOUT_LOCK_KEY, PRISMA_LOCK_KEY
from tests.helpers import copy_example, db_state, run, sql, write

PROJECT = {
    "migrations/001_t.up.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n",
    "migrations/002_alter.up.sql": "ALTER TABLE t ADD COLUMN w INTEGER;\n",
    "backout.toml": 'layout = "plain"\nlock_retries = 2\n',
}


@pytest.mark.postgres
@pytest.mark.parametrize("key", [BACKOUT_LOCK_KEY, PRISMA_LOCK_KEY])
def test_lock_held_by_another_session_exits_3_naming_it(
    tmp_path: Path, pg_url: str, key: int
) -> None:
    project = copy_example("giftregistry", tmp_path)
    before = db_state(pg_url)
    with psycopg.connect(pg_url, autocommit=True, application_name="deploy-job-42") as other:
        other.execute("SELECT pg_advisory_lock(%s)", (key,))
        started = time.monotonic()
        result = run(["up", "--lock-wait", "0"], project=project, url=pg_url)
        elapsed = time.monotonic() - started
        pid = other.info.backend_pid
    assert result.exit_code == 3
    assert f"pid {pid} (deploy-job-42" in result.stderr
    assert elapsed < 5  # --lock-wait 0: fails fast, never waits
    assert db_state(pg_url) == before


def test_sqlite_lock_file_held_exits_3_naming_holder(tmp_path: Path, sqlite_url: str) -> None:
    project = write(tmp_path, PROJECT)
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    lock = db.with_name(db.name + ".backout-lock")
    handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        os.write(handle, json.dumps({"holder": "backout/0 alice@box pid 7"}).encode())
        result = run(["up"], project=project, url=sqlite_url)
    finally:
        os.close(handle)
    assert result.exit_code == 3
    assert "held by backout/0 alice@box pid 7" in result.stderr
    assert not db.exists() or db_state(sqlite_url).history.get("backout_events") in (
        None,
        [("<absent>",)],
    )


@pytest.mark.postgres
def test_lock_timeout_retries_then_exits_3_without_stalling(tmp_path: Path, pg_url: str) -> None:
    project = write(tmp_path, PROJECT)
    assert run(["up", "--to", "001"], project=project, url=pg_url).exit_code == 0
    before = db_state(pg_url)
    with psycopg.connect(pg_url) as holder:
        holder.execute("LOCK TABLE t IN ACCESS SHARE MODE")  # a long-running reader
        started = time.monotonic()
        result = run(["up", "--lock-timeout", "200ms"], project=project, url=pg_url)
        elapsed = time.monotonic() - started
        # While backout waited, an application query on t must never have queued for long.
        holder.rollback()
    assert result.exit_code == 3, result.stderr
    assert "migrations/002_alter.up.sql:1: could not get a lock within 0.2s, 3 attempts" in (
        result.stderr
    )
    assert elapsed < 10
    assert db_state(pg_url).schema == before.schema


@pytest.mark.postgres
def test_application_queries_do_not_queue_behind_a_waiting_migration(
    tmp_path: Path, pg_url: str
) -> None:
    """The point of lock_timeout: ALTER waits in the lock queue and would block every reader
    behind it; backout gives up quickly, so readers are delayed at most ~lock_timeout."""
    project = write(tmp_path, PROJECT)
    assert run(["up", "--to", "001"], project=project, url=pg_url).exit_code == 0
    delays: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while not stop.is_set():
                t0 = time.monotonic()
                conn.execute("SELECT count(*) FROM t")
                delays.append(time.monotonic() - t0)
                time.sleep(0.02)

    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT * FROM t")  # open transaction holding ACCESS SHARE on t
        thread = threading.Thread(target=reader)
        thread.start()
        result = run(["up", "--lock-timeout", "300ms"], project=project, url=pg_url)
        stop.set()
        thread.join()
        holder.rollback()
    assert result.exit_code == 3
    assert delays, "the reader ran"
    assert max(delays) < 1.0, f"an application query waited {max(delays):.2f}s"


def test_sqlite_busy_database_is_a_lock_timeout(tmp_path: Path, sqlite_url: str) -> None:
    project = write(tmp_path, PROJECT)
    assert run(["up", "--to", "001"], project=project, url=sqlite_url).exit_code == 0
    import sqlite3

    db = sqlite_url.removeprefix("sqlite:///")
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t (v) VALUES ('x')")
        result = run(["up", "--lock-timeout", "100ms"], project=project, url=sqlite_url)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert result.exit_code == 3, result.stderr
    assert "could not get a lock" in result.stderr
    assert "w" not in {r[1] for r in sql(sqlite_url, "PRAGMA table_info(t)")}


# --- --lock-wait (issue 12 item 14) ---------------------------------------------------------


def _hold_flock(lock: Path, seconds: float) -> threading.Thread:
    """Hold the SQLite run-lock file for ``seconds`` in a thread (another run)."""
    handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(handle, fcntl.LOCK_EX)
    os.write(handle, json.dumps({"holder": "backout/0 bob@box pid 8"}).encode())

    def release() -> None:
        time.sleep(seconds)
        os.close(handle)

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_held_lock_is_waited_for_up_to_lock_wait(tmp_path: Path, sqlite_url: str) -> None:
    project = write(tmp_path, PROJECT)
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    holder = _hold_flock(db.with_name(db.name + ".backout-lock"), 1.0)
    started = time.monotonic()
    result = run(["up", "--lock-wait", "20s"], project=project, url=sqlite_url)
    elapsed = time.monotonic() - started
    holder.join()
    assert result.exit_code == 0, result.output
    assert elapsed >= 0.9
    assert "held by backout/0 bob@box pid 8; waiting up to 20s (--lock-wait)" in result.output
    keys = sql(sqlite_url, "SELECT migration_key FROM backout_migrations ORDER BY 1")
    assert [r[0] for r in keys] == ["001", "002"]


@pytest.mark.parametrize(
    ("args", "config"),
    [
        (["up", "--lock-wait", "500ms"], ""),
        (["up"], 'lock_wait = "500ms"\n'),
        (["backup", "--full", "--lock-wait", "500ms"], ""),
        (["resolve", "001", "--applied", "--lock-wait", "500ms"], ""),
    ],
)
def test_the_wait_ends_with_exit_3_naming_the_holder(
    tmp_path: Path, sqlite_url: str, args: list[str], config: str
) -> None:
    import backout.cli.backups  # noqa: F401 - registers backup on the CLI

    project = write(tmp_path, PROJECT)
    if config:
        (project / "backout.toml").write_text('layout = "plain"\n' + config)
    assert run(["up", "--to", "001"], project=project, url=sqlite_url).exit_code == 0
    before = db_state(sqlite_url)
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    holder = _hold_flock(db.with_name(db.name + ".backout-lock"), 4.0)
    started = time.monotonic()
    result = run(args, project=project, url=sqlite_url)
    elapsed = time.monotonic() - started
    holder.join()
    assert result.exit_code == 3, result.output
    assert "held by backout/0 bob@box pid 8 (waited 0.5s, --lock-wait)" in result.stderr
    assert 0.4 <= elapsed < 3.5
    assert db_state(sqlite_url) == before


@pytest.mark.mysql
def test_mariadb_runs_on_two_databases_of_one_server_do_not_block_each_other(
    tmp_path: Path, mysql_url: str, mysql_admin_url: str
) -> None:
    """backout's GET_LOCK is per database; Prisma's server-wide lock only in a Prisma project."""
    import uuid

    from tests.helpers import mysql_connect, mysql_url_for

    other = f"backout_t_{uuid.uuid4().hex[:12]}"
    admin = mysql_connect(mysql_admin_url, database=None)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{other}`")
        other_url = mysql_url_for(mysql_admin_url, other)
        holder = mysql_connect(mysql_admin_url, database=other, autocommit=False)
        try:
            with holder.cursor() as cur:
                # another team's backout on the other database, and Prisma Migrate there
                cur.execute("SELECT GET_LOCK(%s, 0)", (f"backout:{other}",))
                cur.execute("SELECT GET_LOCK('prisma_migrate', 0)")
            project = write(tmp_path, PROJECT)
            started = time.monotonic()
            result = run(["up", "--lock-wait", "0"], project=project, url=mysql_url)
            assert result.exit_code == 0, result.output + result.stderr
            assert time.monotonic() - started < 30
            blocked = run(["up", "--lock-wait", "0"], project=project, url=other_url)
            assert blocked.exit_code == 3
            assert f"GET_LOCK('backout:{other}')" in blocked.stderr
        finally:
            holder.close()
        tables = sql(mysql_url, "SELECT migration_key FROM backout_migrations ORDER BY 1")
        assert [r[0] for r in tables] == ["001", "002"]
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{other}`")
        admin.close()
