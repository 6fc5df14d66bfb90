"""Issue 15: backout's run lock also takes the host tool's own migration lock, as that tool takes
it, so ``migrate up`` / ``flyway migrate`` and backout block each other (PostgreSQL, MariaDB).

Neither golang-migrate nor Flyway is installable here: a raw connection takes each tool's lock
with the statement its source runs (golang-migrate ``database/{postgres,mysql}/*.go`` ``Lock``;
Flyway ``PostgreSQLAdvisoryLockTemplate``, ``MySQLNamedLockTemplate``), the ids computed here
from the tools' algorithms (golden values: tests/unit/test_host_locks.py).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from backout.model.urls import parse_url
from backout.project.config import load_config
from backout.run.workspace import Workspace
from tests.helpers import db_state, mysql_connect, run, sql, write

GOLANG = {
    "backout.toml": 'layout = "plain"\n',
    "migrations/1_users.up.sql": "CREATE TABLE users (id integer PRIMARY KEY);\n",
    "migrations/1_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/2_posts.up.sql": "CREATE TABLE posts (id integer PRIMARY KEY);\n",
    "migrations/2_posts.down.sql": "-- backout:risk HIGH\nDROP TABLE posts;\n",
}
FLYWAY = {
    "db/migration/V1__users.sql": "CREATE TABLE users (id integer PRIMARY KEY);\n",
    "db/migration/U1__users.sql": "DROP TABLE users;\n",
}
PROJECTS = {"golang-migrate": GOLANG, "Flyway": FLYWAY}


def java_hash(text: str) -> int:
    value = 0
    for char in text:
        value = (value * 31 + ord(char)) % 2**32
    return value - 2**32 if value >= 2**31 else value


def tool_lock(tool: str, url: str) -> int | str:
    """The lock ``tool`` takes on ``url``'s database, computed from the tool's source."""
    parsed = parse_url(url)
    db = parsed.database or ""
    if parsed.dialect == "postgresql":
        if tool == "golang-migrate":  # GenerateAdvisoryLockId(purl.Path, schema, table)
            crc = zlib.crc32(f"/{db}\x00public\x00schema_migrations".encode())
            return crc * 1486364155 % 2**32
        # LOCK_MAGIC_NUM ("Flyway") + "public"."flyway_schema_history".hashCode()
        return 77431708279161 + java_hash('"public"."flyway_schema_history"')
    if tool == "golang-migrate":  # GET_LOCK(GenerateAdvisoryLockId("db:table"), 10)
        return str(zlib.crc32(f"{db}:schema_migrations".encode()) * 1486364155 % 2**32)
    return f"Flyway-{java_hash(f'`{db}`.`flyway_schema_history`')}"


@contextmanager
def held_as_the_tool_holds_it(tool: str, url: str) -> Iterator[object]:
    """A connection holding ``tool``'s lock with the statement the tool runs."""
    key = tool_lock(tool, url)
    if parse_url(url).dialect == "postgresql":
        with psycopg.connect(url.partition("?")[0], application_name=f"fake-{tool}") as conn:
            if tool == "Flyway":
                # Flyway 10+ default (postgresql.transactional.lock): a transaction-level lock
                conn.autocommit = False
                got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()
            else:
                conn.autocommit = True
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            assert got == (True,)
            yield conn
            conn.rollback()
        return
    conn = mysql_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 10)", (key,))
            assert cur.fetchone() == (1,)
        yield conn
    finally:
        conn.close()


def free_for_the_tool(tool: str, url: str) -> bool:
    """What the tool's own try finds: True when it could take its lock now (then released)."""
    key = tool_lock(tool, url)
    if parse_url(url).dialect == "postgresql":
        with psycopg.connect(url.partition("?")[0], autocommit=True) as conn:
            (got,) = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() or (0,)
            if got:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            return bool(got)
    conn = mysql_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (key,))
            (got,) = cur.fetchone()
            if got == 1:
                cur.execute("SELECT RELEASE_LOCK(%s)", (key,))
            return got == 1
    finally:
        conn.close()


@pytest.fixture(params=["pg_url", "mysql_url"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


@pytest.mark.parametrize("tool", list(PROJECTS))
def test_the_tools_lock_held_refuses_up_naming_it(tmp_path: Path, url: str, tool: str) -> None:
    project = write(tmp_path, PROJECTS[tool])
    before = db_state(url)
    with held_as_the_tool_holds_it(tool, url):
        result = run(["up", "--lock-wait", "0"], project=project, url=url)
    assert result.exit_code == 3, result.output + result.stderr
    assert f"the {tool} run lock" in result.stderr
    assert str(tool_lock(tool, url)) in result.stderr
    assert db_state(url) == before  # nothing applied, no history table made
    # the lock released, the same command runs
    assert run(["up", "--lock-wait", "0"], project=project, url=url).exit_code == 0
    assert sql(url, "SELECT COUNT(*) FROM users") == [(0,)]


@pytest.mark.parametrize("tool", list(PROJECTS))
def test_backouts_run_lock_keeps_the_tool_out(tmp_path: Path, url: str, tool: str) -> None:
    project = write(tmp_path, PROJECTS[tool])
    ws = Workspace.open(load_config(project, url=url))
    assert free_for_the_tool(tool, url)
    with ws.session() as session:
        lock = ws.run_lock(session)
        try:
            assert not free_for_the_tool(tool, url)  # migrate up / flyway migrate would wait
            assert f"{tool}'s" in ws.dialect.run_lock_description(host_locks=ws.host_locks())
        finally:
            lock.release()
    assert free_for_the_tool(tool, url)


def test_status_names_golang_migrate_applying_a_dirty_version(tmp_path: Path, url: str) -> None:
    """``migrate up`` marks version 2 dirty before running it, under its lock: status says it is
    being applied by golang-migrate, not failed; plan refuses naming it."""
    project = write(tmp_path, GOLANG)
    assert run(["up", "--to", "1"], project=project, url=url).exit_code == 0
    with held_as_the_tool_holds_it("golang-migrate", url):
        sql(url, "DELETE FROM schema_migrations")  # SetVersion(2, true)
        sql(url, "INSERT INTO schema_migrations (version, dirty) VALUES (2, true)")
        status = run(["status", "--json"], project=project, url=url)
        doc = json.loads(status.stdout)
        entry = next(m for m in doc["migrations"] if str(m["version"]) == "2")
        assert entry["state"] == "applying", status.stdout
        assert "the golang-migrate run lock" in entry["applying_by"]
    failed = run(["status", "--json"], project=project, url=url)
    entry = next(m for m in json.loads(failed.stdout)["migrations"] if str(m["version"]) == "2")
    assert entry["state"] == "failed"  # the lock gone with a dirty version: migrate died
    assert sql(url, "SELECT version, dirty FROM schema_migrations") in ([(2, True)], [(2, 1)])


def test_dbmate_takes_no_lock_but_backouts_own(tmp_path: Path, pg_url: str) -> None:
    project = write(
        tmp_path,
        {
            "backout.toml": 'layout = "dbmate"\n',
            "db/migrations/20240101000000_users.sql": "-- migrate:up\nCREATE TABLE users "
            "(id integer PRIMARY KEY);\n-- migrate:down\nDROP TABLE users;\n",
        },
    )
    ws = Workspace.open(load_config(project, url=pg_url))
    assert ws.host_locks() == []
    assert "and" not in ws.dialect.run_lock_description(host_locks=ws.host_locks())
