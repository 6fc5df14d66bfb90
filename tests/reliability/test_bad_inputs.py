"""The bad-input corpus: every case is a small project, a state, and one command.

For each case: the first line of stderr is one ``error:`` line naming the file, line or object
(and no traceback); the exit code is the documented one (docs/exit-codes.md); and the schema
fingerprint, table contents, every history row and the backup folder are byte-identical before
and after. Passwords in URLs must not appear in the output.

A case is a row of :data:`CASES`: the base project (plain layout on SQLite, Prisma layout on
PostgreSQL) is applied first (``up``, then a backup when the case needs one), then the case's
file changes are written and its fixture (a held lock, a broken backup folder...) is set up,
and then its command runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backout.dialects.postgres.dialect import BACKOUT_LOCK_KEY, PRISMA_LOCK_KEY
from tests.helpers import db_state
from tests.reliability.common import (
    PASSWORD,
    PASSWORD_SPECIAL,
    Artifacts,
    cli,
    pg_connect,
    record_result,
)

SQLITE_BASE: dict[str, str] = {
    "migrations/001_users.up.sql": """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
        WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 2000)
        INSERT INTO users (id, email) SELECT x, 'u' || x || '@example.com' FROM g;
    """,
    "migrations/001_users.down.sql": """
        -- backout:risk HIGH
        DROP TABLE users;
    """,
    "migrations/002_orders.up.sql": """
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users (id),
            created TEXT NOT NULL,
            note TEXT
        );
        INSERT INTO orders (id, user_id, created, note)
        SELECT id, id, '2024-0' || (1 + id % 9) || '-15', hex(randomblob(200)) FROM users;
    """,
    "migrations/002_orders.down.sql": """
        -- backout:risk HIGH
        -- backout:impact Drops the orders table
        DROP TABLE orders;
    """,
    "migrations/002_orders.down.clear.sql": """
        -- backout:risk HIGH
        -- backout:param since date
        -- backout:preview SELECT id, created FROM orders WHERE created > :since
        DELETE FROM orders WHERE created > :since;
    """,
}

PG_BASE: dict[str, str] = {
    "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
    "prisma/migrations/20240101000000_users/migration.sql": """
        CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);
        INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 500) g;
    """,
    "prisma/migrations/20240201000000_orders/migration.sql": """
        CREATE TABLE orders (
            id serial PRIMARY KEY,
            user_id integer NOT NULL REFERENCES users (id),
            created date NOT NULL
        );
        INSERT INTO orders (user_id, created)
        SELECT id, date '2024-01-01' + (id % 200) FROM users;
    """,
    "prisma/rollback/20240201000000_orders_rollback.sql": """
        -- backout:risk HIGH
        DROP TABLE orders;
    """,
    "prisma/rollback/20240201000000_orders_rollback.clear.sql": """
        -- backout:risk HIGH
        -- backout:param since date
        DELETE FROM orders WHERE created > :since;
    """,
}

PG_FORWARD = "prisma/migrations/20240301000000_more/migration.sql"
ROLLBACK_SQLITE = ["rollback", "--to", "001", "--yes", "--no-simulate"]
ROLLBACK_PG = ["rollback", "--to", "20240101000000", "--yes", "--no-simulate"]
PARTIAL_SQLITE = ["rollback", "002", "--partial", "clear", "--yes"]


@dataclass
class Ctx:
    """What a case's fixture can reach."""

    project: Path
    url: str
    dialect: str
    tmp: Path

    @property
    def db(self) -> Path:
        """The SQLite file."""
        return Path(self.url.removeprefix("sqlite:///"))

    def latest_backup(self) -> Path:
        """The newest backup file in the default folder."""
        folder = self.project / ".backout" / "backups"
        catalog = json.loads((folder / "catalog.json").read_text())
        return folder / catalog["backups"][-1]["file"]


Fixture = Callable[[Ctx], contextlib.AbstractContextManager[None]]


@dataclass(frozen=True)
class Case:
    """One bad input: files to change, a fixture, a command, the exit code and message."""

    id: str
    command: list[str]
    code: int
    message: str
    dialect: str = "sqlite"
    #: path -> new text (dedented), bytes, or None to delete
    files: dict[str, str | bytes | None] = field(default_factory=dict)
    fixture: Fixture | None = None
    #: replaces the database URL given with --url ("{db}" is the case's database)
    url: str | None = None
    #: take a backup before the case (restore cases)
    backup: bool = False
    #: commands run before the case, each with the exit code it must give
    setup: tuple[tuple[tuple[str, ...], int], ...] = ()
    #: texts that must not appear in stdout or stderr
    secrets: tuple[str, ...] = ()
    #: click's own usage error ("Usage: ..." then "Error: ..."), listed apart in
    #: docs/exit-codes.md; ``message`` must then be in its "Error:" line
    click_usage: bool = False
    #: a known backout bug makes this case fail: xfail(strict=True) with this reason
    bug: str = ""
    #: this case reproduces a bug that was fixed: marked ``regression`` with this text
    fixed: str = ""
    #: the run started and failed: documented to append a ``failed`` event (and, for a
    #: restore, to keep its pre-restore backup); everything else must be identical
    records_failure: bool = False


# --- fixtures ----------------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_lock_held(ctx: Ctx) -> Iterator[None]:
    """Another backout holds the SQLite run lock."""
    lock = ctx.db.with_name(ctx.db.name + ".backout-lock")
    handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        os.ftruncate(handle, 0)
        os.write(handle, json.dumps({"holder": "backout/0.1.0 alice@ops pid 4242"}).encode())
        yield
    finally:
        os.close(handle)


def pg_lock_held(key: int, application: str) -> Fixture:
    """Another session holds the advisory lock ``key``."""

    @contextlib.contextmanager
    def hold(ctx: Ctx) -> Iterator[None]:
        with pg_connect(ctx.url, application_name=application) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            yield

    return hold


@contextlib.contextmanager
def pg_table_locked(ctx: Ctx) -> Iterator[None]:
    """A long transaction reads orders (ACCESS SHARE), so DROP TABLE cannot get its lock."""
    import psycopg

    with psycopg.connect(ctx.url.split("?")[0]) as conn:
        conn.execute("SELECT count(*) FROM orders")
        yield
        conn.rollback()


@contextlib.contextmanager
def sqlite_busy(ctx: Ctx) -> Iterator[None]:
    """Another connection holds SQLite's write lock (BEGIN IMMEDIATE)."""
    conn = sqlite3.connect(ctx.db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def _mount_tmpfs(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root")


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def backup_dir_on_tmpfs(options: str, *, fill: bool = False) -> Fixture:
    """backup_dir on a tmpfs mounted with ``options`` (ro, or tiny), written to backout.toml.

    The project uses backout.toml only for backup_dir; the layout is still detected.
    """

    @contextlib.contextmanager
    def mounted(ctx: Ctx) -> Iterator[None]:
        target = ctx.tmp / "mnt-backups"
        _mount_tmpfs(target, options)
        try:
            if fill:
                # Another process filled the volume: only a few KiB are left.
                with contextlib.suppress(OSError), (target / "filler").open("wb") as handle:
                    handle.write(b"\0" * (1 << 24))
            (ctx.project / "backout.toml").write_text(f'backup_dir = "{target}/backups"\n')
            yield
        finally:
            _umount(target)

    return mounted


@contextlib.contextmanager
def backup_dir_is_a_file(ctx: Ctx) -> Iterator[None]:
    """backup_dir names a path under a regular file."""
    (ctx.project / "blocker").write_text("not a folder\n")
    (ctx.project / "backout.toml").write_text('backup_dir = "blocker/backups"\n')
    yield


def corrupt_latest(how: str) -> Fixture:
    """Damage the newest backup file (or the catalog)."""

    @contextlib.contextmanager
    def corrupt(ctx: Ctx) -> Iterator[None]:
        path = ctx.latest_backup()
        if how == "truncate":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif how == "flip":
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
        elif how == "delete":
            path.unlink()
        elif how == "catalog":
            (path.parent / "catalog.json").write_text('{"format": 1, "backups": [{"id": ')
        yield

    return corrupt


# --- the corpus --------------------------------------------------------------------------------

BAD_SQL_UP = "CREATE TABLE a (id INTEGER);\nCREATE TABLE b (id INTEGER,);\n"

CASES: list[Case] = [
    # malformed SQL and directives
    Case(
        "sql-syntax-error-in-pending-migration",
        ["up"],
        2,
        "migrations/003_bad.up.sql:2: syntax error",
        files={"migrations/003_bad.up.sql": BAD_SQL_UP},
    ),
    Case(
        "sql-syntax-error-in-rollback",
        ROLLBACK_SQLITE,
        2,
        "migrations/002_orders.down.sql:2: syntax error",
        files={"migrations/002_orders.down.sql": "-- backout:risk HIGH\nDROP TABLEE orders;\n"},
    ),
    Case(
        "sql-unterminated-string",
        ["up"],
        2,
        "migrations/003_bad.up.sql:1",
        files={"migrations/003_bad.up.sql": "INSERT INTO users (email) VALUES ('oops);\n"},
    ),
    Case(
        "sql-rollback-in-script",
        ["up"],
        2,
        "migrations/003_bad.up.sql:3: ROLLBACK discards the script's own work",
        files={"migrations/003_bad.up.sql": "BEGIN;\nCREATE TABLE c (id INTEGER);\nROLLBACK;\n"},
    ),
    Case(
        "sql-unbalanced-begin",
        ["up"],
        2,
        "migrations/003_bad.up.sql:2: BEGIN is never committed",
        files={"migrations/003_bad.up.sql": "CREATE TABLE c (id INTEGER);\nBEGIN;\n"},
    ),
    Case(
        "sql-vacuum-inside-the-scripts-own-block",
        ["up"],
        2,
        "migrations/003_bad.up.sql:2: VACUUM cannot run inside a transaction, and the script's "
        "own BEGIN puts it in one",
        files={"migrations/003_bad.up.sql": "BEGIN;\nVACUUM;\nCOMMIT;\n"},
    ),
    Case(
        "pg-sql-syntax-error",
        ["up"],
        2,
        "prisma/migrations/20240301000000_more/migration.sql:3",
        dialect="postgresql",
        files={PG_FORWARD: "CREATE TABLE a (id int);\n\nCREATE TABLE b (id int,);\n"},
    ),
    Case(
        "pg-unterminated-dollar-quote",
        ["up"],
        2,
        "prisma/migrations/20240301000000_more/migration.sql:2",
        dialect="postgresql",
        files={PG_FORWARD: "CREATE TABLE a (id int);\nDO $$ BEGIN PERFORM 1; END;\n"},
    ),
    Case(
        "pg-create-index-concurrently-in-the-scripts-own-block",
        ["up"],
        2,
        "CREATE INDEX CONCURRENTLY cannot run inside a transaction block, and the script's own "
        "BEGIN puts it in one",
        dialect="postgresql",
        files={
            PG_FORWARD: "BEGIN;\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n"
            "COMMIT;\n"
        },
    ),
    Case(
        "check-writes-sqlite-cte",
        ROLLBACK_SQLITE,
        2,
        "migrations/002_orders.down.sql:2: verify query must only read, but it writes",
        files={
            "migrations/002_orders.down.sql": "-- backout:risk HIGH\n-- backout:verify WITH g "
            "AS (DELETE FROM users RETURNING 1) SELECT true\nDROP TABLE orders;\n"
        },
        fixed="a require/verify query that writes was committed with the rollback",
    ),
    Case(
        "check-writes-sqlite-preview",
        [*PARTIAL_SQLITE, "--param", "since=2024-01-01"],
        2,
        "migrations/002_orders.down.clear.sql:3: preview query must only read",
        files={
            "migrations/002_orders.down.clear.sql": "-- backout:risk HIGH\n"
            "-- backout:param since date\n-- backout:preview DELETE FROM users\n"
            "DELETE FROM orders WHERE created > :since;\n"
        },
    ),
    Case(
        "check-writes-pg-cte",
        ROLLBACK_PG,
        2,
        "prisma/rollback/20240201000000_orders_rollback.sql:2: verify query must only read",
        dialect="postgresql",
        files={
            "prisma/rollback/20240201000000_orders_rollback.sql": "-- backout:risk HIGH\n"
            "-- backout:verify WITH gone AS (DELETE FROM users WHERE id > 0 RETURNING 1) "
            "SELECT true\nDROP TABLE orders;\n"
        },
        fixed="a require/verify query that writes was committed with the rollback",
    ),
    Case(
        "check-writes-pg-nextval",
        ROLLBACK_PG,
        2,
        "verify query must only read, but it calls nextval()",
        dialect="postgresql",
        files={
            "prisma/rollback/20240201000000_orders_rollback.sql": "-- backout:risk HIGH\n"
            "-- backout:verify SELECT nextval('users_id_seq') > 0\nDROP TABLE orders;\n"
        },
    ),
    Case(
        "directive-unknown-name",
        ROLLBACK_SQLITE,
        2,
        "migrations/002_orders.down.sql:1: unknown directive 'rsik'",
        files={"migrations/002_orders.down.sql": "-- backout:rsik HIGH\nDROP TABLE orders;\n"},
    ),
    Case(
        "directive-bad-risk",
        ROLLBACK_SQLITE,
        2,
        "migrations/002_orders.down.sql:1: risk must be one of NONE, LOW, MEDIUM, HIGH",
        files={"migrations/002_orders.down.sql": "-- backout:risk EXTREME\nDROP TABLE orders;\n"},
    ),
    Case(
        "directive-given-twice",
        ROLLBACK_SQLITE,
        2,
        "migrations/002_orders.down.sql:2: directive 'risk' given twice",
        files={
            "migrations/002_orders.down.sql": "-- backout:risk HIGH\n-- backout:risk LOW\n"
            "DROP TABLE orders;\n"
        },
    ),
    Case(
        "directive-continuation-past-end",
        ROLLBACK_SQLITE,
        2,
        "migrations/002_orders.down.sql:3: directive continues",
        files={
            "migrations/002_orders.down.sql": "-- backout:risk HIGH\nDROP TABLE orders;\n"
            "-- backout:verify SELECT 1 \\\n"
        },
    ),
    Case(
        "directive-not-allowed-in-forward",
        ["up"],
        2,
        "migrations/003_more.up.sql:1: directive 'risk' is not allowed in a forward script",
        files={"migrations/003_more.up.sql": "-- backout:risk HIGH\nCREATE TABLE c (id int);\n"},
    ),
    Case(
        "directive-param-unknown-type",
        PARTIAL_SQLITE,
        2,
        "migrations/002_orders.down.clear.sql:2: param 'since' has unknown type 'datetime'",
        files={
            "migrations/002_orders.down.clear.sql": "-- backout:risk HIGH\n"
            "-- backout:param since datetime\nDELETE FROM orders WHERE created > :since;\n"
        },
    ),
    Case(
        "directive-param-bad-default",
        PARTIAL_SQLITE,
        2,
        "migrations/002_orders.down.clear.sql:2: param 'n' default 'abc' is not a valid integer",
        files={
            "migrations/002_orders.down.clear.sql": "-- backout:risk HIGH\n"
            "-- backout:param n integer = abc\nDELETE FROM orders WHERE id > :n;\n"
        },
    ),
    Case(
        "directive-transaction-bad-value",
        ["up"],
        2,
        "migrations/003_more.up.sql:1: transaction must be 'on' or 'off'",
        files={"migrations/003_more.up.sql": "-- backout:transaction maybe\nSELECT 1;\n"},
    ),
    Case(
        "rollback-script-without-statements",
        ROLLBACK_SQLITE,
        2,
        "rollback script has no statements: migrations/002_orders.down.sql",
        files={"migrations/002_orders.down.sql": "-- backout:risk HIGH\n-- nothing yet\n"},
    ),
    Case(
        "file-not-utf8",
        ["up"],
        2,
        "migrations/003_latin1.up.sql:2: not valid UTF-8",
        files={"migrations/003_latin1.up.sql": b"SELECT 1;\n-- caf\xe9\n"},
    ),
    # missing, duplicate and orphan files
    Case(
        "missing-rollback-script",
        ROLLBACK_SQLITE,
        2,
        "no rollback script for 1 migration(s) in range: 002_orders",
        files={"migrations/002_orders.down.sql": None},
    ),
    Case(
        "duplicate-version",
        ["up"],
        2,
        "two migrations share version 002: 002_orders and 002_other",
        files={"migrations/002_other.up.sql": "SELECT 1;\n"},
    ),
    Case(
        "orphan-rollback",
        ["status"],
        2,
        "migrations/009_gone.down.sql: rollback for migration '009_gone', which does not exist",
        files={"migrations/009_gone.down.sql": "SELECT 1;\n"},
    ),
    Case(
        "orphan-partial-rollback",
        ["status"],
        2,
        "migrations/009_gone.down.fix.sql",
        files={"migrations/009_gone.down.fix.sql": "-- backout:risk LOW\nSELECT 1;\n"},
    ),
    Case(
        "unrecognised-sql-file",
        ["up"],
        2,
        "migrations/notes.sql: unrecognised SQL file",
        files={"migrations/notes.sql": "SELECT 1;\n"},
    ),
    Case(
        "ambiguous-layout",
        ["status"],
        2,
        "ambiguous layout: found plain (migrations), prisma (prisma/migrations)",
        files={"prisma/migrations/20240101000000_x/migration.sql": "SELECT 1;\n"},
    ),
    Case(
        "forward-migration-with-part-name",
        ["up"],
        2,
        "migrations/003_x.up.fix.sql: a forward migration cannot have a part name",
        files={"migrations/003_x.up.fix.sql": "SELECT 1;\n"},
    ),
    # history ahead of files, edited after apply, failed
    Case(
        "history-ahead-of-files-up",
        ["up"],
        2,
        "002_orders",
        files={
            "migrations/002_orders.up.sql": None,
            "migrations/002_orders.down.sql": None,
            "migrations/002_orders.down.clear.sql": None,
        },
    ),
    Case(
        "history-ahead-of-files-rollback",
        ROLLBACK_SQLITE,
        2,
        "002_orders",
        files={
            "migrations/002_orders.up.sql": None,
            "migrations/002_orders.down.sql": None,
            "migrations/002_orders.down.clear.sql": None,
        },
    ),
    Case(
        "pg-history-ahead-of-files",
        ["up"],
        2,
        "20240201000000_orders",
        dialect="postgresql",
        files={
            "prisma/migrations/20240201000000_orders/migration.sql": None,
            "prisma/rollback/20240201000000_orders_rollback.sql": None,
            "prisma/rollback/20240201000000_orders_rollback.clear.sql": None,
        },
    ),
    Case(
        "migration-edited-after-apply",
        ["up"],
        2,
        "migrations/001_users.up.sql was edited after it was applied",
        files={"migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n"},
    ),
    Case(
        "pg-migration-edited-after-apply",
        ["up"],
        2,
        "prisma/migrations/20240101000000_users/migration.sql was edited after it was applied",
        dialect="postgresql",
        files={"prisma/migrations/20240101000000_users/migration.sql": "SELECT 1;\n"},
    ),
    Case(
        "failed-migration-not-resolved",
        ROLLBACK_SQLITE,
        2,
        "migration 003_fails failed and is not resolved",
        setup=((("up",), 4),),
        files={"migrations/003_fails.up.sql": "INSERT INTO nope VALUES (1);\n"},
    ),
    # wrong URLs and passwords
    Case(
        "url-unsupported-scheme",
        ["status"],
        2,
        "unsupported database URL 'oracle://scott:***@db.example.com/orcl'",
        url=f"oracle://scott:{PASSWORD}@db.example.com/orcl",
        secrets=(PASSWORD,),
    ),
    Case(
        "url-invalid-sqlite",
        ["status"],
        2,
        "invalid SQLite URL 'sqlite://x.db'",
        url="sqlite://x.db",
    ),
    Case(
        "url-mysql-unreachable",
        ["up"],
        4,
        "cannot connect to mysql://root:***@127.0.0.1:1/app",
        url=f"mysql://root:{PASSWORD}@127.0.0.1:1/app",
        secrets=(PASSWORD,),
    ),
    Case(
        "url-sqlite-folder-missing",
        ["up"],
        4,
        "folder /nonexistent/backout-rel does not exist",
        url="sqlite:////nonexistent/backout-rel/app.db",
    ),
    Case(
        "pg-url-unknown-role",
        ["up"],
        4,
        "cannot connect to postgresql://no_such_role:***@",
        dialect="postgresql",
        url="{db}|user=no_such_role",
        secrets=(PASSWORD,),
    ),
    Case(
        "pg-url-unreachable-port",
        ["status"],
        4,
        "cannot connect to postgresql://postgres:***@127.0.0.1:1/",
        dialect="postgresql",
        url="{db}|port=1",
        secrets=(PASSWORD,),
    ),
    Case(
        "pg-url-unknown-database",
        ["up"],
        4,
        "cannot connect to postgresql://postgres:***@127.0.0.1:5432/no_such_db_backout_rel",
        dialect="postgresql",
        url="{db}|database=no_such_db_backout_rel",
        secrets=(PASSWORD,),
    ),
    Case(
        "pg-url-password-needs-encoding",
        ["status"],
        4,
        "cannot connect to postgresql://no_such_role:***@127.0.0.1:1/",
        dialect="postgresql",
        url="{db}|user=no_such_role|port=1|password=special",
        secrets=(PASSWORD_SPECIAL, PASSWORD_SPECIAL.replace("@", "%40")),
    ),
    Case(
        "pg-url-provider-mismatch",
        ["status"],
        2,
        "prisma/migrations/migration_lock.toml says provider 'postgresql', but the database URL",
        dialect="postgresql",
        url="sqlite:///elsewhere.db",
    ),
    # locks held
    Case(
        "sqlite-run-lock-held",
        ROLLBACK_SQLITE,
        3,
        "is held by backout/0.1.0 alice@ops pid 4242",
        fixture=sqlite_lock_held,
    ),
    Case(
        "pg-backout-lock-held",
        ROLLBACK_PG,
        3,
        "(deploy-job-42, user postgres",
        dialect="postgresql",
        fixture=pg_lock_held(BACKOUT_LOCK_KEY, "deploy-job-42"),
        secrets=(PASSWORD,),
    ),
    Case(
        "pg-prisma-lock-held",
        # --lock-wait 0: refused at once (waiting, `up` first says so on stderr)
        ["up", "--lock-wait", "0"],
        3,
        "the Prisma Migrate run lock (advisory lock 72707369)",
        dialect="postgresql",
        files={PG_FORWARD: "CREATE TABLE c (id int);\n"},
        fixture=pg_lock_held(PRISMA_LOCK_KEY, "prisma-migrate"),
        secrets=(PASSWORD,),
    ),
    Case(
        "sqlite-run-lock-held-partial",
        [*PARTIAL_SQLITE, "--param", "since=2024-05-01"],
        3,
        "is held by backout/0.1.0 alice@ops pid 4242",
        fixture=sqlite_lock_held,
    ),
    # unwritable and full backup folders
    Case(
        "backup-folder-under-a-file",
        ROLLBACK_SQLITE,
        2,
        "the backup folder",
        fixture=backup_dir_is_a_file,
    ),
    Case(
        "backup-folder-read-only",
        ["backup", "--full"],
        2,
        "is not writable: Read-only file system",
        fixture=backup_dir_on_tmpfs("ro,size=1m"),
    ),
    Case(
        "backup-folder-read-only-rollback",
        ROLLBACK_SQLITE,
        2,
        "is not writable: Read-only file system",
        fixture=backup_dir_on_tmpfs("ro,size=1m"),
    ),
    Case(
        "backup-folder-full",
        ROLLBACK_SQLITE,
        2,
        "is not writable: No space left on device",
        fixture=backup_dir_on_tmpfs("size=2m", fill=True),
    ),
    Case(
        "backup-folder-fills-up-while-writing",
        ["backup", "--full"],
        2,
        "could not write the backup to ",
        files={
            "migrations/003_big.up.sql": "CREATE TABLE big (b BLOB);\n"
            "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 800)\n"
            "INSERT INTO big SELECT randomblob(4096) FROM g;\n"
        },
        setup=((("up",), 0),),
        fixture=backup_dir_on_tmpfs("size=2m"),
        fixed="B5: the error line did not name the backup folder or file: 'error: SQLite could "
        "not write the backup: database or disk is full'",
    ),
    # corrupt backups
    Case(
        "restore-truncated-backup",
        ["restore", "latest", "--yes"],
        2,
        "backup",
        backup=True,
        fixture=corrupt_latest("truncate"),
    ),
    Case(
        "restore-bit-flipped-backup",
        ["restore", "latest", "--yes"],
        2,
        "sha256",
        backup=True,
        fixture=corrupt_latest("flip"),
    ),
    Case(
        "restore-backup-file-missing",
        ["restore", "latest", "--yes"],
        2,
        "backup",
        backup=True,
        fixture=corrupt_latest("delete"),
    ),
    Case(
        "restore-damaged-catalog",
        ["restore", "latest", "--yes"],
        2,
        "catalog.json is damaged",
        backup=True,
        fixture=corrupt_latest("catalog"),
    ),
    Case(
        "restore-unknown-backup",
        ["restore", "20990101T000000Z-full-nope", "--yes"],
        2,
        "no backup '20990101T000000Z-full-nope'",
        backup=True,
    ),
    Case(
        "restore-while-database-busy",
        ["restore", "latest", "--yes"],
        3,
        "lock",
        backup=True,
        files={"backout.toml": 'lock_timeout = "200ms"\n'},
        fixture=sqlite_busy,
        records_failure=True,
        fixed="B3: restore on a busy SQLite database exited 2 (BackupError '... database is "
        "locked'), not 3 as docs/commands/restore.md says for tables that cannot be locked",
    ),
    Case(
        "pg-restore-while-table-locked",
        ["restore", "latest", "--yes"],
        3,
        "lock",
        dialect="postgresql",
        backup=True,
        files={"backout.toml": 'lock_timeout = "200ms"\n'},
        fixture=pg_table_locked,
        records_failure=True,
        secrets=(PASSWORD,),
    ),
    Case(
        "pg-restore-truncated-backup",
        ["restore", "latest", "--yes"],
        2,
        "backup",
        dialect="postgresql",
        backup=True,
        fixture=corrupt_latest("truncate"),
        secrets=(PASSWORD,),
    ),
    # bad partial parameters
    Case(
        "partial-missing-param",
        PARTIAL_SQLITE,
        2,
        "migrations/002_orders.down.clear.sql: missing --param since=<date>",
    ),
    Case(
        "partial-mistyped-param",
        [*PARTIAL_SQLITE, "--param", "since=yesterday"],
        2,
        "migrations/002_orders.down.clear.sql: --param since: not a valid date",
    ),
    Case(
        "partial-unknown-param",
        [*PARTIAL_SQLITE, "--param", "since=2024-05-01", "--param", "x=1"],
        2,
        "unknown parameter(s) x (declared: since)",
    ),
    Case(
        "partial-param-without-value",
        [*PARTIAL_SQLITE, "--param", "since"],
        2,
        "since",
    ),
    Case(
        "partial-unknown-name",
        ["rollback", "002", "--partial", "nope", "--yes"],
        2,
        "migration 002_orders has no partial rollback 'nope' (it has: clear)",
    ),
    Case(
        "partial-with-to",
        ["rollback", "002", "--partial", "clear", "--to", "001", "--yes"],
        2,
        "a partial rollback names one migration: --to/--steps do not apply",
    ),
    # bad flags
    Case(
        "flags-to-and-steps",
        ["rollback", "--to", "001", "--steps", "1", "--yes"],
        2,
        "give --to or --steps, not both",
    ),
    Case(
        "flags-steps-beyond-applied",
        ["rollback", "--steps", "5", "--yes"],
        2,
        "--steps 5: only 2 migration(s) are applied",
    ),
    Case(
        "flags-to-unknown-migration",
        ["rollback", "--to", "777", "--yes"],
        2,
        "777",
    ),
    Case(
        "flags-backup-none-without-consent",
        ["rollback", "--backup", "none", "--yes"],
        2,
        "--backup none needs --i-accept-data-loss",
    ),
    Case(
        "flags-backup-bad-choice",
        ["rollback", "--backup", "foo", "--yes"],
        2,
        "'foo' is not one of 'scoped', 'full', 'none'",
        click_usage=True,
    ),
    Case(
        "flags-bad-lock-timeout",
        ["rollback", "--lock-timeout", "2 seconds", "--yes"],
        2,
        "2 seconds",
    ),
    Case(
        "flags-unknown-option",
        ["rollback", "--frobnicate", "--yes"],
        2,
        "No such option '--frobnicate'",
        click_usage=True,
    ),
    Case(
        "config-unknown-setting",
        ["status"],
        2,
        "backout.toml: unknown setting(s): lock_timout",
        files={"backout.toml": 'lock_timout = "2s"\n'},
    ),
    Case(
        "config-bad-duration",
        ROLLBACK_SQLITE,
        2,
        "backout.toml: lock_timeout: expected a duration",
        files={"backout.toml": 'lock_timeout = "2 seconds"\n'},
    ),
]


# --- running a case ----------------------------------------------------------------------------


def _pg_url_variant(url: str, spec: str) -> str:
    """``{db}|user=x|port=1|database=y|password=special`` applied to the case's URL."""
    from urllib.parse import quote, urlsplit

    parts = urlsplit(url)
    user, password = parts.username, parts.password
    host, port, database = parts.hostname, parts.port, parts.path.lstrip("/")
    for item in spec.split("|")[1:]:
        key, value = item.split("=", 1)
        if key == "user":
            user = value
        elif key == "port":
            port = int(value)
        elif key == "database":
            database = value
        elif key == "password":
            password = quote(PASSWORD_SPECIAL, safe="")
    return f"postgresql://{user}:{password}@{host}:{port}/{database}"


def _apply_files(root: Path, files: dict[str, str | bytes | None]) -> None:
    for rel, content in files.items():
        path = root / rel
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")


def _folder_listing(folder: Path) -> list[tuple[str, int]]:
    if not folder.exists():
        return []
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file()
    )


def _run_case(
    case: Case, tmp_path: Path, url: str, artifacts: Artifacts, admin_url: str = ""
) -> dict[str, Any]:
    project = tmp_path / "project"
    base = PG_BASE if case.dialect == "postgresql" else SQLITE_BASE
    _apply_files(project, dict(base))
    ctx = Ctx(project=project, url=url, dialect=case.dialect, tmp=tmp_path)

    def go(args: list[str], label: str, target: str | None = url) -> Any:
        return cli(args, project=project, url=target, artifacts=artifacts, label=label)

    applied = go(["up"], f"{case.id}-setup-up")
    assert applied.exit_code == 0, applied.describe()
    if case.backup:
        taken = go(["backup", "--full"], f"{case.id}-setup-backup")
        assert taken.exit_code == 0, taken.describe()
    _apply_files(project, case.files)
    for args, code in case.setup:
        done = go(list(args), f"{case.id}-setup")
        assert done.exit_code == code, done.describe()
    target = url
    if case.url is not None:
        target = _pg_url_variant(url, case.url) if case.url.startswith("{db}") else case.url
    fixture = case.fixture(ctx) if case.fixture else contextlib.nullcontext()
    with fixture:
        before = db_state(url)
        backups_before = _folder_listing(project / ".backout")
        outcome = go(case.command, case.id, target)
        after = db_state(url)
        backups_after = _folder_listing(project / ".backout")
    same_history = before.history == after.history
    same_backups = backups_before == backups_after
    if case.records_failure:
        same_history = _only_failed_events_added(before.history, after.history)
        kept = {f for f in backups_before if not f[0].endswith("catalog.json")}
        same_backups = kept <= set(backups_after)
    return {
        "outcome": outcome,
        "same_schema": before.schema == after.schema,
        "same_data": before.data == after.data,
        "same_history": same_history,
        "same_backups": same_backups,
    }


def _only_failed_events_added(
    before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]
) -> bool:
    """Ledgers identical; the event log only gained rows whose outcome is 'failed'."""
    for table, rows in before.items():
        now = after.get(table, [])
        if not table.endswith("events"):
            if rows != now:
                return False
            continue
        if now[: len(rows)] != rows:
            return False
        # columns: id, event, migration, outcome, ...
        if any(row[3] != "failed" for row in now[len(rows) :]):
            return False
    return True


def _assert_case(case: Case, found: dict[str, Any]) -> None:
    outcome = found["outcome"]
    # Progress lines ("… backing up") may come first: they are not errors.
    lines = [line for line in outcome.stderr.splitlines() if not line.startswith("… ")]
    assert "Traceback" not in outcome.stderr, outcome.describe()
    assert lines, f"no error output: {outcome.describe()}"
    if case.click_usage:
        assert lines[0].startswith("Usage: "), outcome.describe()
        assert lines[-1].startswith("Error: "), outcome.describe()
        assert case.message in lines[-1], f"expected {case.message!r} in:\n{lines[-1]}"
    else:
        first = lines[0]
        assert first.startswith("error: "), f"first stderr line is not an error line:\n{first}"
        assert len(outcome.error_lines) == 1, outcome.describe()
        assert case.message in first, f"expected {case.message!r} in:\n{first}"
    assert outcome.exit_code == case.code, outcome.describe()
    for secret in case.secrets:
        assert secret not in outcome.stdout + outcome.stderr, f"password shown: {lines[0]}"
    assert found["same_schema"], "the schema changed"
    assert found["same_data"], "table contents changed"
    assert found["same_history"], "history rows changed"
    assert found["same_backups"], "the backup folder changed"


_TRIED: dict[str, str] = {}


def _params(dialect: str) -> list[Any]:
    return [
        pytest.param(
            c,
            id=c.id,
            marks=[
                *([pytest.mark.xfail(strict=True, reason=c.bug)] if c.bug else []),
                *([pytest.mark.regression(c.fixed)] if c.fixed else []),
            ],
        )
        for c in CASES
        if c.dialect == dialect
    ]


@pytest.mark.parametrize("case", _params("sqlite"))
def test_bad_input_sqlite(case: Case, tmp_path: Path, artifacts: Artifacts) -> None:
    """One clear error line, the documented exit code, nothing changed (SQLite)."""
    url = f"sqlite:///{tmp_path}/app.db"
    found = _run_case(case, tmp_path, url, artifacts)
    _record(case, found)
    _assert_case(case, found)


@pytest.mark.postgres
@pytest.mark.parametrize("case", _params("postgresql"))
def test_bad_input_postgres(
    case: Case, tmp_path: Path, artifacts: Artifacts, pg_database: Callable[[], str]
) -> None:
    """One clear error line, the documented exit code, nothing changed (PostgreSQL)."""
    url = pg_database()
    found = _run_case(case, tmp_path, url, artifacts)
    _record(case, found)
    _assert_case(case, found)


def _record(case: Case, found: dict[str, Any]) -> None:
    outcome = found["outcome"]
    shown = [line for line in outcome.stderr.splitlines() if not line.startswith("… ")]
    first = shown[0] if shown else ""
    try:
        _assert_case(case, found)
        verdict = "ok" if not case.bug else "XPASS: the known bug seems fixed"
    except AssertionError as exc:
        reason = str(exc).splitlines()[0][:200]
        verdict = f"known bug {case.bug.split(':')[0]} (xfail)" if case.bug else "FAILED: " + reason
    record_result(
        "bad_inputs",
        {
            case.id: {
                "dialect": case.dialect,
                "command": " ".join(case.command),
                "exit": outcome.exit_code,
                "expected_exit": case.code,
                "first_line": first[:300],
                "verdict": verdict,
            }
        },
    )


def test_corpus_size() -> None:
    """The issue asks for at least 40 cases."""
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
