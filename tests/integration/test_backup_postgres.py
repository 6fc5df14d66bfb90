"""PostgreSQL-only backup behaviour: finding pg_dump/pg_restore, odd table names, the archive."""

from __future__ import annotations

import glob
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import backout.cli.backups  # noqa: F401 - registers backup/backups/restore on the CLI
from backout.backup.catalog import BackupCatalog
from backout.backup.take import take_backup
from backout.dialects.postgres import backup as pg_backup
from backout.dialects.postgres import tools as pg_tools
from backout.project.config import load_config
from backout.run.workspace import Workspace
from tests.helpers import copy_example, db_state, run, sql, write

ODD = """
CREATE TYPE "Mood" AS ENUM ('happy', 'sad');
CREATE TABLE "Voucher" (id serial PRIMARY KEY, code text UNIQUE, mood "Mood");
CREATE TABLE "we""ird" (id int PRIMARY KEY, voucher int REFERENCES "Voucher" (id),
                        "my col" text DEFAULT 'x');
CREATE TABLE "my table" (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
CREATE TABLE "we" (id int PRIMARY KEY);
CREATE INDEX "we""ird_voucher" ON "we""ird" (voucher);
CREATE VIEW "Vouchers view" AS SELECT * FROM "Voucher";
COMMENT ON COLUMN "we""ird"."my col" IS 'odd';
INSERT INTO "Voucher" (code, mood) VALUES ('A', 'happy'), ('B', NULL), ('C', 'sad');
INSERT INTO "we""ird" VALUES (1, 1, 'q'), (2, 3, DEFAULT);
INSERT INTO "my table" (note) VALUES ('one'), ('two');
INSERT INTO "we" VALUES (7);
"""


@pytest.fixture
def scratch_url(pg_admin_url: str) -> Iterator[str]:
    """A PostgreSQL database name that does not exist yet (dropped afterwards)."""
    import psycopg

    name = f"backout_into_{uuid.uuid4().hex[:10]}"
    yield f"{pg_admin_url.rpartition('/')[0]}/{name}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def odd_project(tmp_path: Path, url: str) -> Path:
    project = write(
        tmp_path / "odd",
        {
            "migrations/001_odd.up.sql": ODD,
            "migrations/001_odd.down.sql": 'DROP VIEW "Vouchers view";\n',
        },
    )
    result = run(["up"], project=project, url=url)
    assert result.exit_code == 0, result.output
    return project


def test_dump_patterns_match_exactly_one_table() -> None:
    assert pg_backup.dump_pattern("public", 'we"ird') == '"public"."we""ird"'
    assert pg_backup.dump_pattern("My Schema", "a.b*?") == '"My Schema"."a.b*?"'


def test_scoped_backup_of_odd_names_holds_exactly_their_rows(
    tmp_path: Path, pg_url: str, scratch_url: str
) -> None:
    project = odd_project(tmp_path, pg_url)
    before = db_state(pg_url)
    ws = Workspace.open(load_config(project, url=pg_url))
    with ws.session() as session:
        record = take_backup(ws, session, kind="scoped", tables=['we"ird'], reason="test")
    # the ledgers' rows too: backout's, and golang-migrate's (the plain layout's host table)
    assert record.tables == ('public.we"ird', "backout.migrations", "public.schema_migrations")
    assert record.row_counts['public.we"ird'] == 2
    archive = project / ".backout" / "backups" / record.file
    listing = subprocess.run(
        ["pg_restore", "--list", str(archive)], capture_output=True, text=True, check=True
    ).stdout
    data = [line for line in listing.splitlines() if " TABLE DATA " in line]
    assert len(data) == 3
    assert any('TABLE DATA public we"ird ' in line for line in data)
    assert not any("TABLE DATA public we " in line for line in data)  # a prefix, not a match
    assert "events" not in listing and "schema_version" not in listing
    result = run(["restore", record.id, "--into", scratch_url], project=project, url=pg_url)
    assert result.exit_code == 0, result.output
    restored = db_state(scratch_url)
    assert restored.schema == before.schema
    assert restored.data['public.we"ird'] == before.data['public.we"ird']
    assert restored.data["public.Voucher"][0] == 0
    assert restored.data["public.my table"][0] == 0


def test_scoped_restore_over_odd_names(tmp_path: Path, pg_url: str) -> None:
    project = odd_project(tmp_path, pg_url)
    ws = Workspace.open(load_config(project, url=pg_url))
    with ws.session() as session:
        record = take_backup(
            ws, session, kind="scoped", tables=["Voucher", 'we"ird', "my table"], reason="t"
        )
    before = db_state(pg_url)
    sql(pg_url, 'DROP VIEW "Vouchers view"')
    sql(pg_url, 'DROP TABLE "we""ird"')
    sql(pg_url, "DELETE FROM \"Voucher\" WHERE code = 'B'")
    sql(pg_url, 'DROP TYPE "Mood" CASCADE')
    sql(pg_url, "INSERT INTO \"my table\" (note) VALUES ('three')")
    sql(pg_url, 'INSERT INTO "we" VALUES (8)')
    result = run(["restore", record.id, "--yes"], project=project, url=pg_url)
    assert result.exit_code == 0, result.output
    after = db_state(pg_url)
    assert after.schema == before.schema
    for table in ("public.Voucher", 'public.we"ird', "public.my table"):
        assert after.data[table] == before.data[table]
    assert after.data["public.we"][0] == 2  # not in the backup: kept as it is now
    # Sequences of restored tables continue where the backup left them.
    assert sql(pg_url, "INSERT INTO \"my table\" (note) VALUES ('x') RETURNING id") == [(3,)]
    # The session's settings were not left changed by the restore script.
    assert sql(pg_url, "SHOW search_path") == [('"$user", public',)]


def test_missing_pg_dump_refuses_before_anything(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_example("vouchers", tmp_path)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    before = db_state(pg_url)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setattr(pg_tools, "VERSIONED_BIN_GLOB", str(tmp_path / "none" / "*" / "bin"))
    env = {"PATH": str(empty), "BACKOUT_PG_BIN": ""}
    result = run(["rollback", "--yes"], project=project, url=pg_url, env=env)
    assert result.exit_code == 2
    assert "pg_dump and pg_restore were not found" in result.output
    assert db_state(pg_url) == before
    result = run(["backup", "--full"], project=project, url=pg_url, env=env)
    assert result.exit_code == 2
    folder = project / ".backout" / "backups"
    assert not folder.exists() or not [p for p in folder.iterdir() if p.suffix == ".dump"]


def test_an_older_pg_dump_is_refused(tmp_path: Path, pg_url: str) -> None:
    project = copy_example("vouchers", tmp_path)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    before = db_state(pg_url)
    fake = tmp_path / "pg11"
    fake.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        script = fake / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) 11.0'\n")
        script.chmod(0o755)
    env = {"BACKOUT_PG_BIN": str(fake)}
    result = run(["backup", "--full"], project=project, url=pg_url, env=env)
    assert result.exit_code == 2
    assert "at least as new as the server" in result.output and "pg_dump 11.0" in result.output
    result = run(["rollback", "--yes"], project=project, url=pg_url, env=env)
    assert result.exit_code == 2
    assert db_state(pg_url) == before
    assert BackupCatalog(project / ".backout" / "backups").records() == []


def test_backout_pg_bin_names_the_tools(tmp_path: Path, pg_url: str) -> None:
    folders = sorted(glob.glob(pg_tools.VERSIONED_BIN_GLOB))
    if not folders:
        pytest.skip("no versioned PostgreSQL client folder on this machine")
    project = copy_example("vouchers", tmp_path)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    env = {"BACKOUT_PG_BIN": folders[-1], "PATH": str(tmp_path)}  # PATH holds no pg_dump
    result = run(["backup", "--full"], project=project, url=pg_url, env=env)
    assert result.exit_code == 0, result.output
    (record,) = BackupCatalog(project / ".backout" / "backups").records()
    assert record.tool.startswith("pg_dump ")


def test_restore_into_an_existing_empty_database(
    tmp_path: Path, pg_url: str, scratch_url: str
) -> None:
    import psycopg

    project = copy_example("vouchers", tmp_path)
    assert run(["up"], project=project, url=pg_url).exit_code == 0
    assert run(["backup", "--full"], project=project, url=pg_url).exit_code == 0
    admin = scratch_url.rpartition("/")[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch_url.rpartition("/")[2]}"')
    result = run(["restore", "latest", "--into", scratch_url], project=project, url=pg_url)
    assert result.exit_code == 0, result.output
    assert db_state(scratch_url).schema == db_state(pg_url).schema


def _fake_tool(folder: Path, name: str, version: str, *, runs: Path, log: Path) -> None:
    """``folder/name`` says it is PostgreSQL ``version``, logs its own path to ``log`` and runs
    the real tool ``runs``."""
    folder.mkdir(parents=True, exist_ok=True)
    body = f'echo "$0" >> "{log}"\nexec "{runs}" "$@"'
    script = folder / name
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "{name} (PostgreSQL) {version}"; '
        f"exit 0; fi\n{body}\n"
    )
    script.chmod(0o755)


def test_backup_and_test_pick_the_same_pg_dump(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PATH: a pg_dump newer than the server next to a pg_restore older than it; in the
    versioned folders: a pair as new as the server. ``backup`` and ``test`` run the same one."""
    real = sorted(glob.glob(pg_tools.VERSIONED_BIN_GLOB))
    if not real:
        pytest.skip("no versioned PostgreSQL client folder on this machine")
    server = sql(pg_url, "SHOW server_version_num")[0][0]
    major = int(server) // 10000
    log = tmp_path / "ran.log"
    on_path = tmp_path / "on-path"
    _fake_tool(on_path, "pg_dump", f"{major + 1}.0", runs=Path(real[-1]) / "pg_dump", log=log)
    _fake_tool(on_path, "pg_restore", f"{major - 1}.0", runs=Path(real[-1]) / "pg_restore", log=log)
    versioned = tmp_path / "versions" / str(major) / "bin"
    for name in ("pg_dump", "pg_restore"):
        _fake_tool(versioned, name, f"{major}.0", runs=Path(real[-1]) / name, log=log)
    monkeypatch.setattr(pg_tools, "VERSIONED_BIN_GLOB", str(tmp_path / "versions" / "*" / "bin"))
    env = {"PATH": f"{on_path}:{os.environ['PATH']}", "BACKOUT_PG_BIN": ""}
    project = copy_example("vouchers", tmp_path / "project")
    assert run(["up"], project=project, url=pg_url).exit_code == 0

    def dumps_run_by(args: list[str]) -> set[str]:
        log.unlink(missing_ok=True)
        result = run(args, project=project, url=pg_url, env=env)
        assert result.exit_code == 0, result.output
        ran = log.read_text().split() if log.exists() else []
        return {line for line in ran if line.endswith("/pg_dump")}

    by_backup = dumps_run_by(["backup", "--full"])
    by_test = dumps_run_by(["test", "--all"])
    assert by_backup == by_test == {str(versioned / "pg_dump")}
