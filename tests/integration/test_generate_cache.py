"""``generate`` saves the replay of the migrations before the one it drafts, and reuses it only
for exactly the same history (issue 11: a late migration in a long project)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import backout.cli.rehearse  # noqa: F401  (registers check/test/generate)
from tests.helpers import run, write

pytestmark = pytest.mark.postgres

TARGET = "20240200000000_widen"


def long_project(root: Path, v_type: str = "integer") -> Path:
    """Twelve migrations; the last widens a column the fourth created."""
    files = {
        f"prisma/migrations/202401{i:02d}000000_t{i}/migration.sql": (
            f'CREATE TABLE "t{i}" ("id" integer PRIMARY KEY, "v" '
            f"{v_type if i == 3 else 'integer'});\n"
        )
        for i in range(1, 12)
    }
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


def test_the_replay_is_saved_and_reused(tmp_path: Path, pg_url: str) -> None:
    root = long_project(tmp_path / "p")
    first = draft(root, pg_url)
    assert 'ALTER TABLE "t3" ALTER COLUMN "v" TYPE integer USING "v"::integer;' in first
    [dump] = saved(root)
    mtime = dump.stat().st_mtime_ns
    assert draft(root, pg_url) == first
    assert [p.stat().st_mtime_ns for p in saved(root)] == [mtime]  # reused, not re-saved


def test_an_edited_earlier_migration_is_never_served_from_the_cache(
    tmp_path: Path, pg_url: str
) -> None:
    root = long_project(tmp_path / "p")
    assert "TYPE integer" in draft(root, pg_url)
    long_project(root, v_type="smallint")  # the fourth migration's bytes change
    again = draft(root, pg_url)
    assert 'ALTER TABLE "t3" ALTER COLUMN "v" TYPE smallint USING "v"::smallint;' in again
    assert len(saved(root)) == 2


def test_a_saved_state_that_does_not_restore_faithfully_is_dropped(
    tmp_path: Path, pg_url: str
) -> None:
    root = long_project(tmp_path / "p")
    first = draft(root, pg_url)
    [dump] = saved(root)
    dump.with_suffix(".json").write_text(json.dumps({"fingerprint": "not this one"}))
    assert draft(root, pg_url) == first
    [again] = saved(root)
    assert json.loads(again.with_suffix(".json").read_text())["fingerprint"] != "not this one"


def test_a_saved_state_loads_back_with_its_rows_exactly(
    tmp_path: Path, pg_url: str, pg_admin_url: str
) -> None:
    """The state file is SQL loaded in one batch: rows come back byte for byte, also text
    that looks like psql's guard lines, and sequences go on where they were."""
    import uuid

    import psycopg

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
