"""Checks that write (issue 12, item 1): a require/verify/preview query never changes data.

What the text shows (a data-modifying CTE, DML, DDL, FOR UPDATE, nextval...) is refused before
anything runs (exit 2, file and line); what it hides (a function that deletes) is undone by the
savepoint or read-only transaction the check runs in. Every test asserts the rows afterwards.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from backout.dialects import dialect_for
from backout.dialects.base import Actor
from backout.model.errors import DatabaseError
from backout.model.urls import parse_url
from tests.helpers import run, sql, write

NOBACKUP = ["--backup", "none", "--i-accept-data-loss", "--yes"]

USERS = """
    CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(20));
    INSERT INTO users VALUES (1, 'a'), (2, 'b'), (3, 'c');
"""
#: a function that deletes every user: a check calling it hides its write from the parser
PG_PURGE = """
    CREATE FUNCTION purge() RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM users;
        RETURN true;
    END $$;
"""
DELETE_CTE = "WITH gone AS (DELETE FROM users WHERE id > 0 RETURNING 1) SELECT true"


def project(root: Path, down_header: str, *, extra_up: str = "") -> Path:
    """Two plain migrations; the rollback of the second carries ``down_header``."""
    return write(
        root / "proj",
        {
            "backout.toml": 'layout = "plain"\n',
            "migrations/001_users.up.sql": USERS + extra_up,
            "migrations/001_users.down.sql": "DROP TABLE users;\n",
            "migrations/002_posts.up.sql": "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n",
            "migrations/002_posts.down.sql": down_header + "DROP TABLE posts;\n",
        },
    )


def users(url: str) -> int:
    return int(sql(url, "SELECT count(*) FROM users")[0][0])


def applied(proj: Path, url: str) -> list[str]:
    doc = json.loads(run(["status", "--json"], project=proj, url=url).stdout)
    return [m["id"] for m in doc["migrations"] if m["state"] == "applied"]


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def any_url(request: pytest.FixtureRequest) -> str:
    fixture = {"sqlite": "sqlite_url", "postgres": "pg_url", "mysql": "mysql_url"}[request.param]
    return str(request.getfixturevalue(fixture))


# --- refused before anything runs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "why"),
    [
        (DELETE_CTE, "it writes (DELETE inside the query)"),
        ("DELETE FROM users", "not a query"),
        ("SELECT 1; DELETE FROM users", "2 statements"),
        ("SELECT id FROM users FOR UPDATE", "FOR UPDATE"),
        ("DROP TABLE users", "not a query"),
    ],
)
@pytest.mark.parametrize("command", ["rollback", "plan", "dry-run"])
def test_writing_check_is_refused_with_file_and_line(
    any_url: str, tmp_path: Path, check: str, why: str, command: str
) -> None:
    if "RETURNING" in check and any_url.startswith("mysql"):
        check = "WITH gone AS (SELECT 1) SELECT * FROM gone FOR UPDATE"
        why = "FOR UPDATE"
    proj = project(tmp_path, f"-- backout:risk LOW\n-- backout:verify {check}\n")
    assert run(["up"], project=proj, url=any_url).exit_code == 0
    args = {
        "rollback": ["rollback", *NOBACKUP],
        "plan": ["plan"],
        "dry-run": ["rollback", "--dry-run"],
    }[command]
    result = run(args, project=proj, url=any_url)
    assert result.exit_code == 2, result.output + result.stderr
    assert "002_posts.down.sql:2" in result.stderr
    assert "verify query must only read" in result.stderr and why in result.stderr
    assert users(any_url) == 3
    assert applied(proj, any_url) == ["001_users", "002_posts"]


def test_lint_flags_a_writing_check(sqlite_url: str, tmp_path: Path) -> None:
    proj = project(tmp_path, f"-- backout:risk LOW\n-- backout:require {DELETE_CTE}\n")
    result = run(["lint", "--json"], project=proj, url=sqlite_url)
    assert result.exit_code == 1
    found = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "BO106"]
    assert [(f["file"].endswith("002_posts.down.sql"), f["line"]) for f in found] == [(True, 2)]


# --- what the text hides is undone ----------------------------------------------------------


@pytest.mark.parametrize("transaction", ["on", "off"])
def test_hidden_write_in_checks_is_undone_by_rollback(
    pg_url: str, tmp_path: Path, transaction: str
) -> None:
    header = "-- backout:risk LOW\n-- backout:require SELECT purge()\n"
    header += "-- backout:verify SELECT purge()\n"
    if transaction == "off":
        header += "-- backout:transaction off\n"
    proj = project(tmp_path, header, extra_up=PG_PURGE)
    assert run(["up"], project=proj, url=pg_url).exit_code == 0
    result = run(["rollback", *NOBACKUP], project=proj, url=pg_url)
    if transaction == "on":
        # under a savepoint: the DELETE happens and is rolled back; the check passed
        assert result.exit_code == 0, result.output + result.stderr
        assert applied(proj, pg_url) == ["001_users"]
    else:
        # alone, in a READ ONLY transaction: the write fails, so the check does, first
        assert result.exit_code == 4, result.output + result.stderr
        assert "read-only transaction" in result.stderr
        assert applied(proj, pg_url) == ["001_users", "002_posts"]
    assert users(pg_url) == 3


@pytest.mark.parametrize("command", [["plan"], ["rollback", "--dry-run"], ["check"]])
def test_hidden_write_in_checks_is_undone_elsewhere(
    pg_url: str, tmp_path: Path, command: list[str]
) -> None:
    header = "-- backout:risk LOW\n-- backout:require SELECT purge()\n"
    header += "-- backout:verify SELECT purge()\n"
    proj = project(tmp_path, header, extra_up=PG_PURGE)
    assert run(["up"], project=proj, url=pg_url).exit_code == 0
    if command == ["check"]:
        # check runs the verify queries of rolled-back migrations
        assert run(["rollback", *NOBACKUP], project=proj, url=pg_url).exit_code == 0
    run(command, project=proj, url=pg_url)
    assert users(pg_url) == 3


def test_query_undone_undoes_a_write_on_every_database(any_url: str) -> None:
    """The run-time guarantee itself, for what no parser sees: in a transaction and alone."""
    url = parse_url(any_url)
    dialect = dialect_for(url)
    with dialect.connect(url, actor=Actor.current()) as session:
        session.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
        session.execute("INSERT INTO users VALUES (1), (2)")
        session.begin()
        session.execute("INSERT INTO users VALUES (3)")
        # SQLite's query_only refuses the write outright; the others undo it
        with contextlib.suppress(DatabaseError):
            session.query_undone("DELETE FROM users", {})
        assert session.in_transaction  # the surrounding work goes on
        session.commit()
        assert session.query("SELECT count(*) FROM users") == [(3,)]
        with pytest.raises(DatabaseError, match=r"(?i)read.?only"):
            session.query_undone("DELETE FROM users", {})
        assert session.query("SELECT count(*) FROM users") == [(3,)]
        assert not session.in_transaction


def test_dblink_in_its_extension_schema_is_refused(pg_url: str, tmp_path: Path) -> None:
    """dblink lives in the schema its extension was created in (public here): a check calling
    public.dblink_exec() commits on another connection, which no savepoint undoes."""
    url = parse_url(pg_url)
    conninfo = f"host={url.host} port={url.port or 5432} user={url.user} dbname={url.database}"
    check = f"SELECT public.dblink_exec('{conninfo}', 'DELETE FROM users') IS NOT NULL"
    proj = project(
        tmp_path,
        f"-- backout:risk LOW\n-- backout:verify {check}\n",
        extra_up="CREATE EXTENSION IF NOT EXISTS dblink SCHEMA public;\n",
    )
    assert run(["up"], project=proj, url=pg_url).exit_code == 0
    result = run(["rollback", *NOBACKUP], project=proj, url=pg_url)
    assert result.exit_code == 2, result.output + result.stderr
    assert "002_posts.down.sql:2" in result.stderr and "dblink_exec" in result.stderr
    assert users(pg_url) == 3
    assert applied(proj, pg_url) == ["001_users", "002_posts"]


def test_mysql_executable_comment_in_a_check_is_refused(mysql_url: str, tmp_path: Path) -> None:
    """MySQL and MariaDB run what /*! … */ holds (here: release every named lock, backout's
    run lock too); sqlglot reads a comment. Refused like any visible write."""
    check = "SELECT count(*) = 3 /*!, RELEASE_ALL_LOCKS() */ FROM users"
    proj = project(tmp_path, f"-- backout:risk LOW\n-- backout:require {check}\n")
    assert run(["up"], project=proj, url=mysql_url).exit_code == 0
    result = run(["rollback", *NOBACKUP], project=proj, url=mysql_url)
    assert result.exit_code == 2, result.output + result.stderr
    assert "002_posts.down.sql:2" in result.stderr and "executable comment" in result.stderr
    assert users(mysql_url) == 3
    assert applied(proj, mysql_url) == ["001_users", "002_posts"]


def test_mysql_check_writing_a_non_transactional_table_stops_the_rollback(
    mysql_url: str, tmp_path: Path
) -> None:
    """Inside the rollback's transaction a check runs under a savepoint, which cannot undo a
    stored function's write to a MyISAM/Aria table. That write cannot be taken back; the
    rollback must not go on as if the check had only read: it stops, undone, and says so."""
    proj = write(
        tmp_path / "proj",
        {
            "backout.toml": 'layout = "plain"\n',
            "migrations/001_users.up.sql": USERS + "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n",
            "migrations/001_users.down.sql": "DROP TABLE posts;\nDROP TABLE users;\n",
            # data only: MySQL runs it in one transaction, its checks under a savepoint
            "migrations/002_posts.up.sql": "INSERT INTO posts VALUES (1), (2);\n",
            "migrations/002_posts.down.sql": "-- backout:risk HIGH\n"
            "-- backout:require SELECT zap() = 1\nDELETE FROM posts WHERE id IN (1, 2);\n",
        },
    )
    assert run(["up"], project=proj, url=mysql_url).exit_code == 0
    sql(mysql_url, "CREATE TABLE notes (id INTEGER) ENGINE=MyISAM")
    sql(mysql_url, "INSERT INTO notes VALUES (1), (2)")
    sql(
        mysql_url,
        "CREATE FUNCTION zap() RETURNS INTEGER MODIFIES SQL DATA "
        "BEGIN DELETE FROM notes; RETURN 1; END",
    )
    result = run(["rollback", *NOBACKUP], project=proj, url=mysql_url)
    assert result.exit_code == 4, result.output + result.stderr
    assert "non-transactional" in result.stderr
    assert applied(proj, mysql_url) == ["001_users", "002_posts"]
    assert sql(mysql_url, "SELECT count(*) FROM posts") == [(2,)]
    assert users(mysql_url) == 3
