"""``generate`` saves the replay of the migrations before the one it drafts, and reuses it only
for exactly the same history (issue 11: a late migration in a long project).

The state is saved in a file and kept on the server as a template database. Every project
here has a history of its own (a unique comment in its first migration): kept states are found
by the history's key, on a server other test runs share.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import backout.cli.rehearse  # noqa: F401  (registers check/test/generate)
from tests.helpers import run, write

pytestmark = pytest.mark.postgres

TARGET = "20240200000000_widen"


def long_project(root: Path, v_type: str = "integer") -> Path:
    """Twelve migrations; the last widens a column the fourth created. The first holds a
    comment unique to ``root``'s test (kept states are shared by identical histories)."""
    unique = hashlib.sha256(str(root.parent).encode()).hexdigest()[:12]
    files = {
        f"prisma/migrations/202401{i:02d}000000_t{i}/migration.sql": (
            f'CREATE TABLE "t{i}" ("id" integer PRIMARY KEY, "v" '
            f"{v_type if i == 3 else 'integer'});\n"
        )
        for i in range(1, 12)
    }
    first = "prisma/migrations/20240101000000_t1/migration.sql"
    files[first] = f"-- {unique}\n" + files[first]
    files[f"prisma/migrations/{TARGET}/migration.sql"] = (
        'ALTER TABLE "t3" ALTER COLUMN "v" TYPE bigint;\n'
    )
    write(root, files)
    (root / "prisma/rollback").mkdir(exist_ok=True)
    return root


def draft(root: Path, url: str) -> str:
    result = run(["generate", TARGET, "--stdout"], project=root, url=url)
    assert result.exit_code == 0, result.output
    return result.output


def saved(root: Path) -> list[Path]:
    return sorted((root / ".backout/cache/replay").glob("*.dump"))


def owner_of(root: Path) -> str:
    """The owner recorded with the project's kept states (see replay_cache.kept_states)."""
    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]


def kept(admin_url: str, root: Path) -> list[tuple[str, bool, str]]:
    """(name, accepts connections, comment) of the project's kept states on the server."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, datallowconn, shobj_description(oid, 'pg_database') "
            "FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE %s",
            (f"backout kept replay state, key % owner {owner_of(root)}",),
        ).fetchall()
    return [(str(n), bool(c), str(d)) for n, c, d in rows]


@pytest.fixture
def root(tmp_path: Path, pg_admin_url: str) -> Iterator[Path]:
    """The project's folder; its kept states are dropped afterwards, also when a test fails."""
    folder = tmp_path / "p"
    yield folder
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name, _, _ in kept(pg_admin_url, folder):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_replay_is_saved_and_reused(root: Path, pg_url: str, pg_admin_url: str) -> None:
    long_project(root)
    first = draft(root, pg_url)
    assert 'ALTER TABLE "t3" ALTER COLUMN "v" TYPE integer USING "v"::integer;' in first
    [dump] = saved(root)
    mtime = dump.stat().st_mtime_ns
    assert draft(root, pg_url) == first
    assert [p.stat().st_mtime_ns for p in saved(root)] == [mtime]  # reused, not re-saved
    [(_, connectable, _)] = kept(pg_admin_url, root)
    assert not connectable  # nothing can change a kept state


def test_the_kept_state_on_the_server_serves_the_next_run(
    root: Path, pg_url: str, pg_admin_url: str
) -> None:
    long_project(root)
    first = draft(root, pg_url)
    [(name, _, comment)] = kept(pg_admin_url, root)
    for path in saved(root):  # without its file, only the server's copy can serve it
        path.unlink()
        path.with_suffix(".json").unlink()
    assert draft(root, pg_url) == first
    assert saved(root) == []  # nothing was replayed, so nothing saved again
    [(renamed, _, same)] = kept(pg_admin_url, root)
    assert same == comment
    assert renamed != name  # renamed on use: the sweep counts its idle time from then
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        leftover = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'backout\\_scratch\\_%%' "
            "AND datname LIKE %s AND shobj_description(oid, 'pg_database') IS NULL",
            (f"%\\_{os.getpid()}\\_%",),
        ).fetchone()
    assert leftover == (0,)  # the run's scratch copy is gone


def test_a_kept_state_that_does_not_copy_faithfully_is_dropped(
    root: Path, pg_url: str, pg_admin_url: str
) -> None:
    long_project(root)
    first = draft(root, pg_url)
    [(name, _, comment)] = kept(pg_admin_url, root)
    key = comment.split(" ")[5]
    lie = f"backout kept replay state, key {key} fingerprint {'0' * 64} owner {owner_of(root)}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{lie}'")
    assert draft(root, pg_url) == first
    [(again, _, fixed)] = kept(pg_admin_url, root)
    assert again != name
    assert fixed == comment  # made again from the replay, with the true fingerprint


def test_an_edited_earlier_migration_is_never_served_from_the_cache(
    root: Path, pg_url: str, pg_admin_url: str
) -> None:
    long_project(root)
    assert "TYPE integer" in draft(root, pg_url)
    long_project(root, v_type="smallint")  # the fourth migration's bytes change
    again = draft(root, pg_url)
    assert 'ALTER TABLE "t3" ALTER COLUMN "v" TYPE smallint USING "v"::smallint;' in again
    assert len(saved(root)) == 2
    assert len(kept(pg_admin_url, root)) == 2  # one per history


def test_a_saved_state_that_does_not_restore_faithfully_is_dropped(
    root: Path, pg_url: str, pg_admin_url: str
) -> None:
    long_project(root)
    first = draft(root, pg_url)
    for name, _, _ in kept(pg_admin_url, root):  # the file serves it, not the server
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}"')
    [dump] = saved(root)
    dump.with_suffix(".json").write_text(json.dumps({"fingerprint": "not this one"}))
    assert draft(root, pg_url) == first
    [again] = saved(root)
    assert json.loads(again.with_suffix(".json").read_text())["fingerprint"] != "not this one"
    assert len(kept(pg_admin_url, root)) == 1  # kept on the server again


def test_a_file_saved_from_another_server_version_is_not_loaded(
    root: Path, pg_url: str, pg_admin_url: str
) -> None:
    long_project(root)
    first = draft(root, pg_url)
    for name, _, _ in kept(pg_admin_url, root):  # only the file could serve it
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}"')
    [dump] = saved(root)
    recorded = json.loads(dump.with_suffix(".json").read_text())
    assert recorded["origin"].startswith("PostgreSQL ")
    dump.with_suffix(".json").write_text(json.dumps({**recorded, "origin": "PostgreSQL 9.6"}))
    assert draft(root, pg_url) == first
    [again] = saved(root)
    assert json.loads(again.with_suffix(".json").read_text()) == recorded  # replayed, saved


def test_a_saved_state_loads_back_with_its_rows_exactly(
    tmp_path: Path, pg_url: str, pg_admin_url: str
) -> None:
    """The state file is SQL loaded in one batch: rows come back byte for byte, also text
    that looks like psql's guard lines, and sequences go on where they were."""
    from backout.dialects import dialect_for
    from backout.dialects.base import Actor
    from backout.model.urls import parse_url

    tricky = "a\n\\restrict abc\nb\n\\unrestrict abc\n'; DROP TABLE t; --"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('CREATE TABLE "t" ("id" serial PRIMARY KEY, "v" text, "b" bytea)')
        conn.execute('INSERT INTO "t" ("v", "b") VALUES (%s, %s), (NULL, NULL)', (tricky, b"\0\1"))
    source = parse_url(pg_url)
    dialect = dialect_for(source)
    path = tmp_path / "state.dump"
    dialect.save_state(source, Actor.current(), path)
    assert path.read_text(encoding="utf-8").count("INSERT INTO") == 1  # rows, not COPY
    name = f"backout_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        copy = pg_url.rsplit("/", 1)[0] + "/" + name
        dialect.load_state(parse_url(copy), Actor.current(), path)
        with psycopg.connect(copy, autocommit=True) as conn:
            rows = conn.execute('SELECT "id", "v", "b" FROM "t" ORDER BY "id"').fetchall()
            conn.execute('INSERT INTO "t" ("v") VALUES (%s)', ("next",))
            last = conn.execute('SELECT max("id") FROM "t"').fetchone()
        assert rows == [(1, tricky, b"\0\1"), (2, None, None)]
        assert last == (3,)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
