"""Issue 13, item 14: hooks get a DATABASE_URL their tools accept; ``--into`` is shown as given.

A Prisma project scoped with ``?schema=app``: ``psql "$DATABASE_URL"`` must connect (libpq
rejects ``?schema=``) and land in that schema; ``BACKOUT_SCHEMA`` names it; the URL as
configured stays available to Prisma as ``BACKOUT_PRISMA_URL``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from tests.helpers import run, sql, write

PROJECT = {
    "migrations/001_users.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n"
    "INSERT INTO users VALUES (1), (2);\n",
    "migrations/001_users.down.sql": "-- backout:risk HIGH\nDROP TABLE users;\n",
    "migrations/002_posts.up.sql": "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n",
    "migrations/002_posts.down.sql": "-- backout:risk LOW\nDROP TABLE posts;\n",
}


def test_psql_accepts_the_hook_url(tmp_path: Path, pg_url: str) -> None:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    log = tmp_path / "hook.log"
    hook = (
        f'psql \\"$DATABASE_URL\\" -XAtc \\"SELECT current_schema(), count(*) FROM users\\" '
        f'>> {log} 2>&1; echo \\"schema=$BACKOUT_SCHEMA prisma=$BACKOUT_PRISMA_URL\\" >> {log}'
    )
    root = write(
        tmp_path / "p",
        {**PROJECT, "backout.toml": f'layout = "plain"\n[hooks]\nbefore_rollback = "{hook}"\n'},
    )
    sql(pg_url, "CREATE SCHEMA app")
    url = pg_url + "?schema=app"
    assert run(["up"], project=root, url=url).exit_code == 0
    result = run(["rollback", "--yes"], project=root, url=url)
    assert result.exit_code == 0, result.output
    lines = log.read_text().splitlines()
    assert lines[0] == "app|2", lines  # psql connected, in the project's schema
    assert lines[1] == f"schema=app prisma={url}"
    assert sql(pg_url, "SELECT count(*) FROM app.users") == [(2,)]
    assert sql(pg_url, "SELECT to_regclass('app.posts') IS NULL") == [(True,)]


def test_into_url_is_shown_as_given(tmp_path: Path, pg_url: str, pg_admin_url: str) -> None:
    root = write(tmp_path / "p", {**PROJECT, "backout.toml": 'layout = "plain"\n'})
    sql(pg_url, "CREATE SCHEMA app")
    url = pg_url + "?schema=app"
    assert run(["up"], project=root, url=url).exit_code == 0
    assert run(["backup", "--full"], project=root, url=url).exit_code == 0
    (backup,) = json.loads(run(["backups", "--json"], project=root, url=url).stdout)["backups"]
    name = f"backout_t_{uuid.uuid4().hex[:12]}"
    base = pg_admin_url.rpartition("/")[0].replace("postgres@", "postgres:s3cret@")
    into = f"{base}/{name}?sslmode=disable"
    try:
        result = run(["restore", backup["id"], "--into", into], project=root, url=url)
        assert result.exit_code == 0, result.output
        shown = into.replace(":s3cret@", ":***@")
        # the project's schema is carried over, and said apart from the URL the user gave
        assert f"into {shown} (schema app)" in result.output
        assert "s3cret" not in result.output
        copy = pg_admin_url.rpartition("/")[0] + "/" + name
        assert sql(copy, "SELECT count(*) FROM app.users") == [(2,)]
    finally:
        sql(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize(
    ("schema", "query"),
    [("App", "App"), ("my app", "my%20app"), ("a,b", "a%2Cb")],
)
def test_psql_lands_in_a_schema_with_odd_characters(
    tmp_path: Path, pg_url: str, schema: str, query: str
) -> None:
    """search_path takes identifiers: unquoted, "App" would be app, "my app" a syntax error
    and "a,b" two schemas; in libpq's options a space separates two options."""
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    log = tmp_path / "hook.log"
    hook = (
        f'psql \\"$DATABASE_URL\\" -XAtc \\"SELECT current_schema(), count(*) FROM users\\" '
        f">> {log} 2>&1"
    )
    root = write(
        tmp_path / "p",
        {**PROJECT, "backout.toml": f'layout = "plain"\n[hooks]\nbefore_rollback = "{hook}"\n'},
    )
    quoted = '"' + schema + '"'
    sql(pg_url, f"CREATE SCHEMA {quoted}")
    url = pg_url + "?schema=" + query
    assert run(["up"], project=root, url=url).exit_code == 0
    result = run(["rollback", "--yes"], project=root, url=url)
    assert result.exit_code == 0, result.output
    assert log.read_text().splitlines() == [f"{schema}|2"]
    assert sql(pg_url, f"SELECT to_regclass('{quoted}.posts') IS NULL") == [(True,)]


def test_the_urls_own_libpq_options_are_kept(tmp_path: Path, pg_url: str) -> None:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    log = tmp_path / "hook.log"
    hook = (
        f'psql \\"$DATABASE_URL\\" -XAtc \\"SELECT current_schema(), '
        f"current_setting('statement_timeout')\\\" >> {log} 2>&1"
    )
    root = write(
        tmp_path / "p",
        {**PROJECT, "backout.toml": f'layout = "plain"\n[hooks]\nbefore_rollback = "{hook}"\n'},
    )
    sql(pg_url, "CREATE SCHEMA app")
    url = pg_url + "?schema=app&options=-c%20statement_timeout%3D7s"
    assert run(["up"], project=root, url=url).exit_code == 0
    result = run(["rollback", "--yes"], project=root, url=url)
    assert result.exit_code == 0, result.output
    assert log.read_text().splitlines() == ["app|7s"]
