"""Issue 15: backout and the real dbmate keep one history, ``schema_migrations``, on each database.

dbmate is installed from npm (pinned, ``dbmate@2.36.0``) by ``.ci/run`` into
``.ci/tools/node_modules`` (or named by ``BACKOUT_TEST_DBMATE``). Without it these tests skip on
a developer machine and fail with ``CI`` set. dbmate is given the database URL in its
environment (``DATABASE_URL``), never on its command line. Each test asserts both tools' views
and the schema.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import MATRIX, REPO, dialect_of, matrix_url, run, sql, write

DBMATE_VERSION = "2.36.0"
DBMATE = Path(
    os.environ.get("BACKOUT_TEST_DBMATE")
    or REPO / ".ci" / "tools" / "node_modules" / ".bin" / "dbmate"
)

V1, V2, V3 = "20240101000000", "20240102000000", "20240103000000"
USERS = f"db/migrations/{V1}_users.sql"
POSTS = f"db/migrations/{V2}_posts.sql"
PROJECT = {
    "backout.toml": 'layout = "dbmate"\n',
    USERS: "-- migrate:up\nCREATE TABLE users (id integer PRIMARY KEY);\n\n"
    "-- migrate:down\n-- backout:risk HIGH\nDROP TABLE users;\n",
    POSTS: "-- migrate:up\nCREATE TABLE posts (id integer PRIMARY KEY, user_id integer);\n\n"
    "-- migrate:down\n-- backout:risk HIGH\nDROP TABLE posts;\n",
}
NOBACKUP = ["--backup", "none", "--i-accept-data-loss", "--yes"]


@pytest.fixture(scope="module")
def dbmate_bin() -> Path:
    """The pinned dbmate binary (skips without it, fails with CI set)."""
    if not DBMATE.is_file():
        message = f"dbmate not found at {DBMATE} (`bash .ci/run` installs it from npm)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI is set: the dbmate interop tests must run", pytrace=False)
        pytest.skip(message)
    version = subprocess.run(
        [str(DBMATE), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert DBMATE_VERSION in version, version
    return DBMATE


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


def dbmate_url(url: str) -> str:
    """The same database as dbmate's drivers spell it."""
    if url.startswith("sqlite:///"):
        return "sqlite:" + url.removeprefix("sqlite://")
    if url.startswith("postgresql://"):
        return url + ("&" if "?" in url else "?") + "sslmode=disable"
    return url


def dbmate(binary: Path, root: Path, url: str, *args: str, table: str | None = None) -> str:
    """Run ``dbmate ARGS`` in ``root``, the URL in its environment; its output (must succeed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBMATE_")}
    env["DATABASE_URL"] = dbmate_url(url)
    if table is not None:
        env["DBMATE_MIGRATIONS_TABLE"] = table
    done = subprocess.run(
        [str(binary), "--no-dump-schema", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert dbmate_url(url) not in " ".join(done.args)  # never on the command line
    return done.stdout


def dbmate_applied(binary: Path, root: Path, url: str, table: str | None = None) -> list[str]:
    """The versions ``dbmate status`` shows applied ([X])."""
    out = dbmate(binary, root, url, "status", table=table)
    return [line.split()[1].split("_")[0] for line in out.splitlines() if line.startswith("[X]")]


def host_rows(url: str, table: str = "schema_migrations") -> list[str]:
    return sorted(str(r[0]) for r in sql(url, f"SELECT version FROM {table}"))


def tables(url: str) -> set[str]:
    if dialect_of(url) == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    elif dialect_of(url) == "mysql":
        query = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    return {str(r[0]) for r in sql(url, query)} & {"users", "posts", "flags"}


def status(root: Path, url: str, code: int = 0) -> dict[str, dict[str, object]]:
    result = run(["status", "--json"], project=root, url=url)
    assert result.exit_code == code, result.output + result.stderr
    document = json.loads(result.stdout)
    assert (
        document["host_table"] == "schema_migrations"
        or code != 0
        or "." in str(document["host_table"])
    )
    return {str(m["version"]): m for m in document["migrations"]}


def test_backout_up_then_dbmate_sees_it_applied(dbmate_bin: Path, tmp_path: Path, url: str) -> None:
    root = write(tmp_path, PROJECT)
    assert run(["up"], project=root, url=url).exit_code == 0
    assert host_rows(url) == [V1, V2]
    assert dbmate_applied(dbmate_bin, root, url) == [V1, V2]
    out = dbmate(dbmate_bin, root, url, "up")
    assert "Applying" not in out  # nothing pending for dbmate either
    assert host_rows(url) == [V1, V2]
    assert tables(url) == {"users", "posts"}
    entries = status(root, url)
    assert [entries[v]["recorded_by"] for v in (V1, V2)] == [None, None]


def test_table_is_created_as_dbmate_creates_it(dbmate_bin: Path, tmp_path: Path, url: str) -> None:
    root = write(tmp_path, PROJECT)
    assert run(["up"], project=root, url=url).exit_code == 0
    # dbmate creates its own table under another name, in the same database, for a no-op
    # migration: the two must have the same columns, types, nullability and key
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "1_noop.sql").write_text("-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 1;\n")
    dbmate(dbmate_bin, root, url, "--migrations-dir", str(probe), "up", table="dbmate_made")
    assert describe(url, "schema_migrations") == describe(url, "dbmate_made")


def describe(url: str, table: str) -> object:
    if dialect_of(url) == "sqlite":
        text = sql(url, "SELECT sql FROM sqlite_master WHERE name = %s", (table,))[0][0]
        return str(text).replace(f'"{table}"', "T")
    if dialect_of(url) == "mysql":
        return sql(url, f"SHOW CREATE TABLE {table}")[0][1].replace(f"`{table}`", "T")
    return sql(
        url,
        "SELECT column_name, data_type, character_maximum_length, is_nullable, "
        "(SELECT count(*) FROM information_schema.table_constraints c "
        "WHERE c.table_name = %s AND c.constraint_type = 'PRIMARY KEY') "
        "FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
        (table, table),
    )


def test_backout_rollback_then_dbmate_reapplies(dbmate_bin: Path, tmp_path: Path, url: str) -> None:
    root = write(tmp_path, PROJECT)
    assert run(["up"], project=root, url=url).exit_code == 0
    result = run(["rollback", *NOBACKUP], project=root, url=url)
    assert result.exit_code == 0, result.output + result.stderr
    assert host_rows(url) == [V1]
    assert tables(url) == {"users"}
    assert dbmate_applied(dbmate_bin, root, url) == [V1]
    out = dbmate(dbmate_bin, root, url, "up")
    assert f"Applied: {V2}_posts.sql" in out
    assert tables(url) == {"users", "posts"}
    entries = status(root, url)
    # applied by dbmate alone: no checksum known, so never "edited"; no time known
    assert (entries[V2]["state"], entries[V2]["recorded_by"]) == ("applied", "dbmate")
    assert (entries[V2]["edited"], entries[V2]["applied_at"]) == (False, None)
    text = run(["status"], project=root, url=url).output
    assert "applied by dbmate" in text
    # and backout can roll back what dbmate applied
    assert run(["rollback", *NOBACKUP], project=root, url=url).exit_code == 0
    assert dbmate_applied(dbmate_bin, root, url) == [V1]
    assert tables(url) == {"users"}


def test_dbmate_up_and_rollback_then_backout_agrees(
    dbmate_bin: Path, tmp_path: Path, url: str
) -> None:
    root = write(tmp_path, PROJECT)
    dbmate(dbmate_bin, root, url, "up")
    entries = status(root, url)
    assert [(entries[v]["state"], entries[v]["recorded_by"]) for v in (V1, V2)] == [
        ("applied", "dbmate"),
        ("applied", "dbmate"),
    ]
    assert run(["up"], project=root, url=url).exit_code == 0  # nothing to do
    assert tables(url) == {"users", "posts"}
    dbmate(dbmate_bin, root, url, "rollback")
    assert tables(url) == {"users"}
    entries = status(root, url)
    assert entries[V2]["state"] in ("pending", "rolled_back")
    assert run(["up"], project=root, url=url).exit_code == 0
    assert tables(url) == {"users", "posts"}
    assert host_rows(url) == [V1, V2]
    assert dbmate_applied(dbmate_bin, root, url) == [V1, V2]
    # backout applied V2 itself this time: its ledger agrees, nothing is "by dbmate"
    assert status(root, url)[V2]["recorded_by"] is None
    # dbmate rolls back what backout applied
    dbmate(dbmate_bin, root, url, "rollback")
    entries = status(root, url)
    assert (entries[V2]["state"], entries[V2]["recorded_by"]) == ("rolled_back", "dbmate")
    assert entries[V2]["rolled_back_at"] is None  # dbmate does not say when
    assert host_rows(url) == [V1]


def test_failed_migration_is_pending_for_dbmate(dbmate_bin: Path, tmp_path: Path, url: str) -> None:
    bad = f"db/migrations/{V3}_flags.sql"
    root = write(
        tmp_path,
        {
            **PROJECT,
            bad: "-- migrate:up\nCREATE TABLE flags (id integer PRIMARY KEY);\n"
            "INSERT INTO no_such_table VALUES (1);\n\n-- migrate:down\nDROP TABLE flags;\n",
        },
    )
    result = run(["up"], project=root, url=url)
    assert result.exit_code == 4, result.output + result.stderr
    entries = status(root, url, code=1)
    assert entries[V3]["state"] == "failed"
    # dbmate keeps no row for a failed migration (its transaction wrote none): pending
    assert host_rows(url) == [V1, V2]
    assert dbmate_applied(dbmate_bin, root, url) == [V1, V2]
    assert tables(url) >= {"users", "posts"}
    # fixed, then resolved and applied by dbmate: both agree again
    (root / bad).write_text(
        "-- migrate:up\nCREATE TABLE IF NOT EXISTS flags (id integer PRIMARY KEY);\n\n"
        "-- migrate:down\nDROP TABLE flags;\n"
    )
    assert run(["resolve", V3, "--rolled-back"], project=root, url=url).exit_code == 0
    dbmate(dbmate_bin, root, url, "up")
    assert host_rows(url) == [V1, V2, V3]
    assert status(root, url)[V3]["state"] == "applied"


def test_restore_brings_dbmate_history_back(dbmate_bin: Path, tmp_path: Path, url: str) -> None:
    root = write(tmp_path, PROJECT)
    assert run(["up"], project=root, url=url).exit_code == 0
    assert run(["rollback", "--yes"], project=root, url=url).exit_code == 0  # scoped backup
    assert dbmate_applied(dbmate_bin, root, url) == [V1]
    result = run(["restore", "latest", "--yes"], project=root, url=url)
    assert result.exit_code == 0, result.output + result.stderr
    assert tables(url) == {"users", "posts"}
    assert host_rows(url) == [V1, V2]
    assert dbmate_applied(dbmate_bin, root, url) == [V1, V2]
    assert [status(root, url)[v]["recorded_by"] for v in (V1, V2)] == [None, None]


def test_schema_qualified_table(dbmate_bin: Path, tmp_path: Path, pg_url: str) -> None:
    table = "ops.dbmate_history"
    root = write(
        tmp_path, {**PROJECT, "backout.toml": f'layout = "dbmate"\nmigrations_table = "{table}"\n'}
    )
    assert run(["up"], project=root, url=pg_url).exit_code == 0
    assert host_rows(pg_url, table) == [V1, V2]
    assert dbmate_applied(dbmate_bin, root, pg_url, table=table) == [V1, V2]
    assert sql(pg_url, "SELECT to_regclass('public.schema_migrations') IS NULL")[0][0] is True
    dbmate(dbmate_bin, root, pg_url, "rollback", table=table)
    assert status(root, pg_url)[V2]["recorded_by"] == "dbmate"
