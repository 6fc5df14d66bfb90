"""Data safety lanes (issue 12, items 1 and 2): checks that write, and ``?schema=`` scoping.

**Checks that write.** On PostgreSQL, SQLite and MariaDB, a project whose rollback carries a
``require`` and a ``verify`` that try to delete every user goes through every path that runs a
check: ``plan``, ``rollback --dry-run``, ``rollback`` (one transaction), ``rollback`` of a
``transaction off`` script (journaled), ``check`` (verify of a rolled-back migration), ``test``
and ``emergency``. Two kinds of write are tried: one the text shows (refused before anything
runs: exit 2, file and line) and, where the database has stored functions, one it hides (a
function that deletes: undone by the savepoint or read-only transaction the check runs in).
After every run the ``users`` table must hold exactly its rows.

**Schema scoping.** Two Prisma projects share one PostgreSQL database (``?schema=a`` and
``?schema=b``) beside a table of no project (``public.audit``). Every command of project a
(up, status, check, plan, backup, rollback, test, restore of its full backup) must leave b's
and public's tables, rows and checksums exactly as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import sql, write
from tests.reliability.common import Artifacts, cli, record_result

NOBACKUP = ["--backup", "none", "--i-accept-data-loss", "--yes"]
USERS = "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(20));\n"
FILL = "INSERT INTO users VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e');\n"
#: a write each database's parser shows: refused before anything runs
VISIBLE = {
    "postgresql": "WITH gone AS (DELETE FROM users RETURNING 1) SELECT true",
    "sqlite": "WITH gone AS (DELETE FROM users RETURNING 1) SELECT true",
    "mysql": "DELETE FROM users",
}
#: a function that deletes every user: the check's text does not show the write
HIDDEN_FUNCTION = {
    "postgresql": (
        "CREATE FUNCTION wipe_users() RETURNS boolean LANGUAGE plpgsql AS $$\n"
        "BEGIN DELETE FROM users; RETURN true; END $$;\n"
    ),
    "mysql": (
        "DELIMITER //\nCREATE FUNCTION wipe_users() RETURNS BOOLEAN MODIFIES SQL DATA\n"
        "BEGIN DELETE FROM users; RETURN TRUE; END //\nDELIMITER ;\n"
    ),
}


def _project(root: Path, dialect: str, check: str, *, transaction: bool) -> Path:
    """Plain layout: users (with a row-deleting function where there are functions), then a
    table whose rollback requires and verifies ``check``."""
    header = f"-- backout:risk LOW\n-- backout:require {check}\n-- backout:verify {check}\n"
    if not transaction:
        header += "-- backout:transaction off\n"
    return write(
        root,
        {
            "backout.toml": 'layout = "plain"\n',
            "migrations/001_users.up.sql": USERS + FILL + HIDDEN_FUNCTION.get(dialect, ""),
            "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n"
            + ("DROP FUNCTION wipe_users;\n" if dialect in HIDDEN_FUNCTION else ""),
            "migrations/002_posts.up.sql": "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n",
            "migrations/002_posts.down.sql": header + "DROP TABLE posts;\n",
        },
    )


#: every path that runs a check (the args, and whether it needs the migration rolled back)
PATHS: dict[str, tuple[list[str], bool]] = {
    "plan": (["plan"], False),
    "rollback --dry-run": (["rollback", "--dry-run"], False),
    "rollback": (["rollback", *NOBACKUP], False),
    "check": (["check"], True),
    "test": (["test", "--all"], False),
    "emergency": (["emergency", "--to", "001_users", "--yes", "--i-accept-data-loss"], False),
}


@pytest.fixture
def databases(
    pg_database: Callable[[], str], request: pytest.FixtureRequest
) -> Iterator[Callable[[str, Path], str]]:
    """Factory: a new empty database of a dialect (PostgreSQL with the suite's password)."""

    def make(dialect: str, folder: Path) -> str:
        if dialect == "postgresql":
            return pg_database()
        if dialect == "sqlite":
            return f"sqlite:///{folder / 'app.db'}"
        return str(request.getfixturevalue("mysql_url"))

    yield make


def _users(url: str) -> int:
    return int(sql(url, "SELECT count(*) FROM users")[0][0])


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite", "mysql"])
def test_checks_that_write_never_change_data(
    dialect: str,
    databases: Callable[[str, Path], str],
    tmp_path: Path,
    artifacts: Artifacts,
) -> None:
    """Every check path × visible write, and × hidden write × (transaction on, off): rows stay."""
    kinds = {"visible": VISIBLE[dialect]}
    if dialect in HIDDEN_FUNCTION:
        kinds["hidden"] = "SELECT wipe_users()"
    runs = 0
    refused = 0
    # one MariaDB database per test (emptied between runs); a new one per run elsewhere
    shared = databases(dialect, tmp_path) if dialect == "mysql" else None
    outcomes: dict[str, int] = {}
    changed: list[str] = []
    for kind, check in kinds.items():
        # the refusal reads the text alone: one transaction mode is enough for it
        for transaction in (True, False) if kind == "hidden" else (True,):
            for name, (args, needs_rolled_back) in PATHS.items():
                label = f"checks-{dialect}-{kind}-{'tx' if transaction else 'notx'}-{name}"
                folder = tmp_path / label.replace(" ", "_")
                folder.mkdir(parents=True)
                if shared is None:
                    url = databases(dialect, folder)
                else:
                    url = shared
                    _reset_mysql(url)
                proj = _project(folder / "proj", dialect, check, transaction=transaction)
                up = cli(["up"], project=proj, url=url, artifacts=artifacts, label=label + "-up")
                assert up.exit_code == 0, up.describe()
                if needs_rolled_back:
                    # check runs the verify of rolled-back migrations: roll back first with
                    # checks that only read, then give the script the writing ones
                    down = proj / "migrations" / "002_posts.down.sql"
                    written = down.read_text(encoding="utf-8")
                    down.write_text("-- backout:risk LOW\nDROP TABLE posts;\n", encoding="utf-8")
                    done = cli(
                        ["rollback", *NOBACKUP],
                        project=proj,
                        url=url,
                        artifacts=artifacts,
                        label=label + "-rollback",
                    )
                    assert done.exit_code == 0, done.describe()
                    down.write_text(written, encoding="utf-8")
                outcome = cli(args, project=proj, url=url, artifacts=artifacts, label=label)
                runs += 1
                outcomes[str(outcome.exit_code)] = outcomes.get(str(outcome.exit_code), 0) + 1
                if kind == "visible":
                    assert outcome.exit_code == 2, outcome.describe()
                    assert "002_posts.down.sql:" in outcome.stderr, outcome.describe()
                    refused += 1
                if _users(url) != 5:
                    changed.append(f"{label}: {_users(url)} users left")
    record_result(
        "check_writes",
        {
            dialect: {
                "runs": runs,
                "paths": sorted(PATHS),
                "kinds": sorted(kinds),
                "refused_before_running": refused,
                "exit_codes": outcomes,
                "runs_that_changed_rows": len(changed),
            }
        },
    )
    assert not changed, "\n".join(changed)


def _reset_mysql(url: str) -> None:
    """Empty the MariaDB database between runs (one database per test: the fixture's)."""
    tables = sql(
        url, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
    )
    for (name,) in tables:
        sql(url, f"DROP TABLE IF EXISTS `{name}` CASCADE")
    sql(url, "DROP FUNCTION IF EXISTS wipe_users")


# --- schema scoping ------------------------------------------------------------------------


def _prisma(root: Path) -> Path:
    return write(
        root,
        {
            "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
            "prisma/migrations/20240101000000_init/migration.sql": (
                'CREATE TABLE "Order" (id integer PRIMARY KEY, note text);\n'
            ),
            "prisma/migrations/20240201000000_items/migration.sql": (
                'CREATE TABLE "Item" (id integer PRIMARY KEY, '
                '"orderId" integer REFERENCES "Order" (id));\n'
            ),
            "prisma/rollback/20240201000000_items_rollback.sql": (
                '-- backout:risk HIGH\n-- backout:verify SELECT true\nDROP TABLE "Item";\n'
            ),
        },
    )


def _outside(url: str) -> list[Any]:
    """Tables of b and public, with row counts and content checksums."""
    tables = sql(
        url,
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('b', 'public') ORDER BY 1, 2",
    )
    state: list[Any] = list(tables)
    for schema, table in tables:
        state += sql(
            url,
            f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM \"{schema}\"."
            f'"{table}" t',
        )
    return state


SCOPE_COMMANDS: list[tuple[str, list[str]]] = [
    ("status", ["status"]),
    ("check", ["check"]),
    ("plan", ["plan"]),
    ("backup --full", ["backup", "--full"]),
    ("test", ["test", "--all"]),
    ("rollback", ["rollback", "--yes"]),
    ("up", ["up"]),
    ("restore", ["restore", "latest", "--yes"]),
]


def test_schema_scope_two_projects_in_one_database(
    pg_database: Callable[[], str], tmp_path: Path, artifacts: Artifacts
) -> None:
    """Everything project a does leaves project b and public.audit exactly as they were."""
    url = pg_database()
    url_a, url_b = url + "&schema=a", url + "&schema=b"
    if "?" not in url:
        url_a, url_b = url + "?schema=a", url + "?schema=b"
    a, b = _prisma(tmp_path / "a"), _prisma(tmp_path / "b")
    sql(url, "CREATE TABLE public.audit (id integer PRIMARY KEY)")
    sql(url, "INSERT INTO public.audit SELECT generate_series(1, 1000)")
    for project, target, name in ((a, url_a, "a"), (b, url_b, "b")):
        up = cli(["up"], project=project, url=target, artifacts=artifacts, label=f"scope-up-{name}")
        assert up.exit_code == 0, up.describe()
    sql(url, "INSERT INTO b.\"Order\" SELECT g, 'b' FROM generate_series(1, 1000) g")
    sql(url, "INSERT INTO a.\"Order\" SELECT g, 'a' FROM generate_series(1, 50) g")
    before = _outside(url)
    touched: list[str] = []
    for name, args in SCOPE_COMMANDS:
        outcome = cli(args, project=a, url=url_a, artifacts=artifacts, label=f"scope-a-{name}")
        assert outcome.exit_code == 0, outcome.describe()
        if _outside(url) != before:
            touched.append(name)
    # the restore brought a back to its full backup (taken before rollback and up)
    assert sql(url, 'SELECT count(*) FROM a."Order"') == [(50,)]
    record_result(
        "schema_scope",
        {
            "commands": [n for n, _ in SCOPE_COMMANDS],
            "runs": len(SCOPE_COMMANDS) + 2,
            "rows_outside": sum(int(r[0]) for r in before if isinstance(r[0], int)),
            "commands_that_touched_another_schema": touched,
        },
    )
    assert not touched, touched
