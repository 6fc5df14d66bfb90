"""Scratch databases a killed run leaves are swept by the next run, and only those (issue 12).

Lane "scratch sweep": kill -9 ``backout test`` while its scratch copy exists (TRIALS times),
then run it again: the leftover of the killed run is gone afterwards, and a scratch database
that is still in use (a live owner, or one with a session connected) or not backout's is never
touched. The naming rules themselves are checked on both servers with databases named as each
case (dead owner on this host, live owner, another host, older than a day, an old-style name).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backout.dialects import scratch_names
from tests.helpers import mysql_connect, mysql_url_for
from tests.reliability.common import base_env, record_result

TRIALS = int(os.environ.get("BACKOUT_SCRATCH_TRIALS", "3"))

FILES = {
    "migrations/001_items.up.sql": "CREATE TABLE items (id integer PRIMARY KEY, n integer);\n"
    "INSERT INTO items VALUES (1, 1), (2, 2);\n",
    "migrations/001_items.down.sql": "DROP TABLE items;\n",
    "migrations/002_more.up.sql": "ALTER TABLE items ADD COLUMN m integer;\n",
    "migrations/002_more.down.sql": "ALTER TABLE items DROP COLUMN m;\n",
}


def _project(root: Path, prefix: str, extra: dict[str, str] | None = None) -> Path:
    for rel, text in {**FILES, **(extra or {})}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "backout.toml").write_text(f'layout = "plain"\nscratch_prefix = "{prefix}"\n')
    return root


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _name(prefix: str, host: str, pid: int, created: float) -> str:
    return f"{prefix}{host}_{pid}_{int(created)}_{uuid.uuid4().hex[:6]}"


def _cases(prefix: str) -> dict[str, tuple[str, bool]]:
    """name → (case, swept?)"""
    here = scratch_names._host_tag()
    now = time.time()
    cases = {
        "dead owner on this host": (_name(prefix, here, _dead_pid(), now), True),
        "live owner on this host": (_name(prefix, here, os.getpid(), now), False),
        "another host, recent": (_name(prefix, "0badc0de", _dead_pid(), now), False),
        "another host, two days old": (_name(prefix, "0badc0de", 4242, now - 172800), True),
        "old-style name": (f"{prefix}{uuid.uuid4().hex[:12]}", False),
        "dead owner, a session connected": (_name(prefix, here, _dead_pid(), now), False),
        # another host whose clock is two days behind (or a long run): a session says it is
        # in use, whatever its name says about its age
        "two days old, a session connected": (_name(prefix, "0badc0de", 4242, now - 172800), False),
    }
    return cases


class Server:
    """Create, list, connect to and drop databases on one server."""

    def __init__(self, dialect: str, admin_url: str) -> None:
        self.dialect = dialect
        self.admin_url = admin_url

    def run(self, statement: str) -> list[tuple[object, ...]]:
        if self.dialect == "postgresql":
            from tests.reliability.common import pg_connect

            with pg_connect(self.admin_url) as conn:
                cur = conn.execute(statement)
                return list(cur.fetchall()) if cur.description else []
        conn = mysql_connect(self.admin_url, database=None)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def names(self, prefix: str) -> set[str]:
        like = prefix.replace("_", "\\_") + "%"
        if self.dialect == "postgresql":
            sql = f"SELECT datname FROM pg_database WHERE datname LIKE '{like}'"
        else:
            sql = (
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                f"WHERE SCHEMA_NAME LIKE '{like}'"
            )
        return {str(r[0]) for r in self.run(sql)}

    def create(self, name: str) -> None:
        self.run(f"CREATE DATABASE {self.quote(name)}")

    def drop(self, name: str) -> None:
        force = " WITH (FORCE)" if self.dialect == "postgresql" else ""
        self.run(f"DROP DATABASE IF EXISTS {self.quote(name)}{force}")

    def quote(self, name: str) -> str:
        return f'"{name}"' if self.dialect == "postgresql" else f"`{name}`"

    def url(self, database: str) -> str:
        if self.dialect == "mysql":
            return mysql_url_for(self.admin_url, database)
        return self.admin_url.rsplit("/", 1)[0] + "/" + database

    def connect(self, database: str) -> Callable[[], None]:
        """Hold a session on ``database``; returns its close."""
        if self.dialect == "postgresql":
            from tests.reliability.common import pg_connect

            conn = pg_connect(self.url(database))
            return conn.close
        mconn = mysql_connect(self.admin_url, database=database)
        return mconn.close


@pytest.fixture(params=["postgresql", "mysql"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
        yield Server("postgresql", str(request.getfixturevalue("pg_admin_url")))
    else:
        request.applymarker(pytest.mark.mysql)
        yield Server("mysql", str(request.getfixturevalue("mysql_admin_url")))


def _backout(args: list[str], project: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "backout", *args, "-C", str(project)],
        env=base_env({"DATABASE_URL": url}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def test_the_sweep_drops_only_certainly_abandoned_scratch_databases(
    server: Server, tmp_path: Path
) -> None:
    prefix = f"bo_{uuid.uuid4().hex[:8]}_"
    database = f"{prefix}app"
    cases = _cases(prefix)
    server.create(database)
    for name, _ in cases.values():
        server.create(name)
    closes = [
        server.connect(cases["dead owner, a session connected"][0]),
        server.connect(cases["two days old, a session connected"][0]),
    ]
    try:
        project = _project(tmp_path / "p", prefix)
        proc = _backout(["test", "002"], project, server.url(database))
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (out + err).decode()[-2000:]
        left = server.names(prefix)
        for case, (name, swept) in cases.items():
            assert (name not in left) == swept, f"{case}: {name} {'kept' if swept else 'dropped'}"
        assert database in left
        # the run's own scratch database is gone too
        assert left == {database} | {n for n, swept in cases.values() if not swept}
    finally:
        for close in closes:
            close()
        for name in server.names(prefix):
            server.drop(name)
    record_result("scratch_sweep", {f"rules_{server.dialect}": sorted(cases)})


@pytest.mark.postgres
def _wait_for_no_sessions(server: Server, names: set[str], *, within: float) -> None:
    listed = ", ".join(f"'{name}'" for name in sorted(names))
    sql = f"SELECT count(*) FROM pg_stat_activity WHERE datname IN ({listed})"
    deadline = time.monotonic() + within
    while (count := int(str(server.run(sql)[0][0]))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not count, f"the killed run's sessions still run after {within} s: {count}"


def test_kill_9_leftovers_are_swept_by_the_next_run(pg_admin_url: str, tmp_path: Path) -> None:
    """The lane: kill -9 `backout test` while its scratch copy exists, then run it again."""
    server = Server("postgresql", pg_admin_url)
    prefix = f"bo_{uuid.uuid4().hex[:8]}_"
    database = f"{prefix}app"
    server.create(database)
    slow = {
        "migrations/002_more.down.sql": "SELECT pg_sleep(30);\nALTER TABLE items DROP COLUMN m;\n"
    }
    project = _project(tmp_path / "p", prefix, slow)
    url = server.url(database)
    held = 0
    try:
        for _ in range(TRIALS):
            proc = _backout(["test", "002"], project, url)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if server.names(prefix) - {database}:
                    time.sleep(0.3)
                    break
                time.sleep(0.02)
            assert proc.poll() is None, "the run ended before its scratch database was seen"
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            left = server.names(prefix) - {database}
            assert left, "a killed run left no scratch database (nothing to sweep)"
            # Sessions of the killed run end with it, even one inside pg_sleep(30): the server
            # checks for the missing client (client_connection_check_interval)
            _wait_for_no_sessions(server, left, within=10)
            clean = _backout(["test", "001"], project, url)
            out, err = clean.communicate(timeout=300)
            assert clean.returncode == 0, (out + err).decode()[-2000:]
            remaining = server.names(prefix) - {database}
            assert not (left & remaining), f"left by the killed run and not swept: {left}"
            held += 1
    finally:
        for name in server.names(prefix):
            server.drop(name)
    record_result("scratch_sweep", {"kill_9_postgresql": {"trials": TRIALS, "held": held}})
