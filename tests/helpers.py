"""Test helpers: example projects, running the CLI, and the observable state of a database."""

from __future__ import annotations

import shutil
import sqlite3
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from backout.cli import main
from backout.model.urls import parse_url

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def copy_example(name: str, dest: Path) -> Path:
    """A private copy of ``examples/<name>`` (tests may edit it)."""
    target = dest / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("*.db", ".env"))
    return target


def write(root: Path, files: dict[str, str]) -> Path:
    """Create files (dedented) under ``root``; returns ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def run(
    args: Sequence[str],
    *,
    project: Path | None = None,
    url: str | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> Result:
    """Invoke the CLI in-process (no DATABASE_URL from the outer environment)."""
    argv = list(args)
    if project is not None:
        argv += ["-C", str(project)]
    if url is not None:
        argv += ["--url", url]
    runner = CliRunner()
    base_env = {"DATABASE_URL": "", "NO_COLOR": "1", "COLUMNS": "200"}
    base_env.update(env or {})
    return runner.invoke(main, argv, env=base_env, input=input, catch_exceptions=False)


# --- database state ------------------------------------------------------------------------


def _pg_query(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    conn = psycopg.connect(url.split("?", maxsplit=1)[0], autocommit=True)

    def query(sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    return conn, query


def _sqlite_query(path: Path):  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(path)

    def query(sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        return list(conn.execute(sql.replace("%s", "?"), params or ()).fetchall())

    return conn, query


def mysql_connect(url: str, *, database: str | None = "", **options: Any):  # type: ignore[no-untyped-def]
    """A PyMySQL connection (autocommit, UTC) to the server of ``url``: its database, or
    ``database`` (None: none). Host, port, socket, user and password all come from the URL."""
    import pymysql

    parsed = parse_url(url)
    params = dict(parsed.params)
    socket = params.get("socket") or params.get("unix_socket")
    where: dict[str, Any] = (
        {"unix_socket": socket}
        if socket
        else {"host": parsed.host or "127.0.0.1", "port": parsed.port or 3306}
    )
    kwargs: dict[str, Any] = {
        "user": parsed.user,
        "password": parsed.password or "",
        "database": parsed.database if database == "" else database,
        "charset": "utf8mb4",
        "autocommit": True,
        "init_command": "SET time_zone = '+00:00'",
        **where,
        **options,
    }
    return pymysql.connect(**kwargs)


def wait_for_shared_server_locks(project: Path, url: str) -> None:
    """Let the project's commands wait up to 2 minutes for the run lock on MySQL/MariaDB.

    A Prisma project takes Prisma's lock there, ``GET_LOCK('prisma_migrate')``, which is
    server-wide: on a server shared with other test runs (or with a test that holds it on
    purpose, tests/integration/test_locks.py), the default 5 s wait makes a test fail for
    what another one does.
    """
    if parse_url(url).dialect == "mysql":
        with (project / "backout.toml").open("a", encoding="utf-8") as toml:
            toml.write('lock_wait = "120s"\n')


def mysql_url_for(admin_url: str, name: str) -> str:
    """``admin_url`` with another database (host, user, password and options kept)."""
    return parse_url(admin_url).with_database(name).raw


def _mysql_query(url: str):  # type: ignore[no-untyped-def]
    conn = mysql_connect(url)

    def query(sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            return list(cur.fetchall()) if cur.description else []

    return conn, query


def sql(url: str, statement: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement on the database at ``url`` (autocommit) and return its rows."""
    parsed = parse_url(url)
    if parsed.dialect == "mysql":
        conn, query = _mysql_query(url)
        try:
            return query(statement, params)
        finally:
            conn.close()
    if parsed.dialect == "sqlite":
        assert parsed.path is not None
        conn, query = _sqlite_query(parsed.path)
        try:
            rows = query(statement, params)
            conn.commit()
            return rows
        finally:
            conn.close()
    conn, query = _pg_query(url)
    try:
        return query(statement, params)
    finally:
        conn.close()


@dataclass(frozen=True)
class DbState:
    """What "the database is exactly as it was" compares: schema, data and history."""

    schema: str
    data: dict[str, tuple[int, str]]
    history: dict[str, list[tuple[Any, ...]]]


_HISTORY = {
    "postgresql": {
        "_prisma_migrations": "SELECT * FROM _prisma_migrations ORDER BY started_at, id",
        "backout.migrations": "SELECT * FROM backout.migrations ORDER BY started_at, id",
        "backout.events": "SELECT * FROM backout.events ORDER BY id",
    },
    "sqlite": {
        "_prisma_migrations": "SELECT * FROM _prisma_migrations ORDER BY started_at, id",
        "backout_migrations": "SELECT * FROM backout_migrations ORDER BY started_at, id",
        "backout_events": "SELECT * FROM backout_events ORDER BY id",
    },
    "mysql": {
        "_prisma_migrations": "SELECT * FROM _prisma_migrations ORDER BY started_at, id",
        "backout_migrations": "SELECT * FROM backout_migrations ORDER BY started_at, id",
        "backout_events": "SELECT * FROM backout_events ORDER BY id",
    },
}


#: the host tools' own history tables, kept beside backout's (dbmate, golang-migrate)
HOST_TABLES = ("schema_migrations",)


def db_state(url: str) -> DbState:
    """Schema fingerprint, per-table row counts/checksums, and every history row."""
    parsed = parse_url(url)
    if parsed.dialect == "sqlite":
        from backout.dialects.sqlite.catalog import read_sqlite_snapshot, read_table_stats

        assert parsed.path is not None
        if not parsed.path.exists():
            return DbState(schema="(no file)", data={}, history={})
        conn, query = _sqlite_query(parsed.path)
        snapshot = read_sqlite_snapshot(query)
        stats = read_table_stats(query, snapshot)
    elif parsed.dialect == "mysql":
        from backout.dialects.mysql.catalog import read_mysql_snapshot
        from backout.dialects.mysql.catalog import read_table_stats as mysql_stats

        conn, query = _mysql_query(url)
        snapshot = read_mysql_snapshot(query)
        stats = mysql_stats(query, snapshot)
    else:
        from backout.dialects.postgres.catalog import read_postgres_snapshot
        from backout.dialects.postgres.catalog import read_table_stats as pg_stats

        conn, query = _pg_query(url)
        snapshot = read_postgres_snapshot(query)
        stats = pg_stats(query, snapshot)
    try:
        history: dict[str, list[tuple[Any, ...]]] = {}
        for table, statement in _HISTORY[parsed.dialect].items():
            try:
                history[table] = query(statement)
            except Exception:  # noqa: BLE001 - a missing table is part of the state
                if parsed.dialect == "postgresql":
                    conn.rollback()
                history[table] = [("<absent>",)]
        data = {name: (s.row_count, s.checksum) for name, s in stats.items()}
        # the host tools' history tables (dbmate's, golang-migrate's) are history, not data
        for name in [n for n in data if n.rsplit(".", 1)[-1] in HOST_TABLES]:
            del data[name]
            quoted = ".".join(
                f'"{p}"' if parsed.dialect != "mysql" else f"`{p}`" for p in name.split(".")
            )
            history[name] = sorted(query(f"SELECT * FROM {quoted}"), key=repr)
        return DbState(schema=snapshot.fingerprint(), data=data, history=history)
    finally:
        conn.close()


# --- the shared matrix ---------------------------------------------------------------------

#: the databases of the shared integration matrix, as the ids of its parameters, and the
#: fixture that gives each a fresh URL
MATRIX = {"sqlite": "sqlite_url", "postgres": "pg_url", "mysql": "mysql_url"}


def matrix_url(request: Any) -> str:
    """The fresh database URL of a fixture parametrised over :data:`MATRIX`'s keys."""
    return str(request.getfixturevalue(MATRIX[request.param]))


def dialect_of(url: str) -> str:
    """``sqlite``, ``postgresql`` or ``mysql``: which database the URL names."""
    return parse_url(url).dialect


def transactional_ddl(url: str) -> bool:
    """Whether a ROLLBACK undoes DDL on this database (not on MySQL/MariaDB: runs are journaled)."""
    from backout.dialects import dialect_for
    from backout.model.script import Statement

    ddl = Statement("CREATE TABLE backout_probe (id integer)", line=1, index=0)
    return not dialect_for(parse_url(url)).commits_implicitly(ddl)
