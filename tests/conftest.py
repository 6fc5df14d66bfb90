"""Shared fixtures: throwaway databases on the real servers, and the CI fail-not-skip rule.

With ``CI`` set, a test that needs PostgreSQL or MariaDB fails when the server is missing; on a
developer machine it is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backout.model.urls import mask_url

#: test files whose tests are ``slow`` (deselect them with ``pytest -m "not slow"``): the
#: reliability suite, and the interop tests that install and run the real Prisma CLI
SLOW = ("tests/reliability/", "tests/integration/test_prisma_interop.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of :data:`SLOW` ``slow``."""
    for item in items:
        path = item.path.as_posix()
        if any(f"/{part}" in path or path.endswith(part) for part in SLOW):
            item.add_marker(pytest.mark.slow)


PG_ADMIN_URL = os.environ.get("BACKOUT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN_URL = os.environ.get("BACKOUT_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")


def _server_missing(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable: {exc}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: server tests must run, not skip)", pytrace=False)
    pytest.skip(message)


def _pg_connect(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of the PostgreSQL maintenance database (fails under CI when the server is missing).

    At the end of the session, the schema-only copies ``plan`` kept for a next run
    (docs/configuration.md) that nobody else may claim any more are dropped.
    """
    try:
        with _pg_connect(PG_ADMIN_URL) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "server missing"
        _server_missing("PostgreSQL at " + mask_url(PG_ADMIN_URL), exc)
    yield PG_ADMIN_URL
    _drop_kept_copies(PG_ADMIN_URL)


def _drop_kept_copies(admin_url: str) -> None:
    """Drop the kept simulation copies and replay states of this session's runs: made on this
    host by this process or by one that is gone (a ``backout`` subprocess), with no session
    connected. Another session's copies stay (its process lives); ours are only a cache, so a
    copy another run renames or connects to meanwhile is simply not dropped."""
    import psycopg

    from backout.dialects import scratch_names
    from backout.dialects.postgres.kept import KEPT_ANY

    with _pg_connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT d.datname, (SELECT count(*) FROM pg_stat_activity a "
            "WHERE a.datname = d.datname) FROM pg_database d "
            "WHERE shobj_description(d.oid, 'pg_database') LIKE %s",
            (KEPT_ANY + "%",),
        ).fetchall()
        for name, connections in rows:
            if scratch_names.claimable(str(name), int(connections)):
                # no FORCE: a run that connected to it meanwhile keeps it
                with contextlib.suppress(psycopg.Error):
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _pg_url_for(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test; dropped afterwards."""
    name = f"backout_t_{uuid.uuid4().hex[:12]}"
    with _pg_connect(pg_admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url_for(pg_admin_url, name)
    finally:
        with _pg_connect(pg_admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """Path of a (not yet created) SQLite database file in the test's temporary folder."""
    return tmp_path / "test.db"


@pytest.fixture
def sqlite_url(sqlite_path: Path) -> str:
    """``sqlite:///`` URL of :func:`sqlite_path`."""
    return f"sqlite:///{sqlite_path}"


@pytest.fixture(scope="session")
def mysql_admin_url() -> str:
    """URL of the MariaDB/MySQL server, ``BACKOUT_TEST_MYSQL`` (fails under CI when missing)."""
    from tests.helpers import mysql_connect

    try:
        mysql_connect(MYSQL_ADMIN_URL, database=None, connect_timeout=5).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "server missing"
        _server_missing("MariaDB at " + mask_url(MYSQL_ADMIN_URL), exc)
    return MYSQL_ADMIN_URL


@pytest.fixture
def mysql_url(mysql_admin_url: str) -> Iterator[str]:
    """A new, empty MariaDB database for this test; dropped afterwards."""
    from tests.helpers import mysql_connect, mysql_url_for

    name = f"backout_t_{uuid.uuid4().hex[:12]}"
    conn = mysql_connect(mysql_admin_url, database=None)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
    finally:
        conn.close()
    try:
        yield mysql_url_for(mysql_admin_url, name)
    finally:
        conn = mysql_connect(mysql_admin_url, database=None)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()
