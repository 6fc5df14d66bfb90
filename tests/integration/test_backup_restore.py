"""`backup`, `backups`, `restore` and the backup `rollback` takes, on SQLite, PostgreSQL and
MariaDB.

Every test asserts on the database afterwards (schema fingerprint, per-table row counts and
checksums, ledger rows), and on the backup files themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import backout.cli.backups  # noqa: F401 - registers backup/backups/restore on the CLI
from backout.backup.catalog import BackupCatalog, BackupRecord
from backout.demo.sampledata import fill
from backout.dialects.base import Actor
from tests.helpers import (
    MATRIX,
    DbState,
    copy_example,
    db_state,
    dialect_of,
    matrix_url,
    mysql_connect,
    mysql_url_for,
    run,
    transactional_ddl,
    wait_for_shared_server_locks,
)
from tests.helpers import sql as run_sql

SCOPED = ["Voucher", "VoucherRedemption"]


@pytest.fixture(params=list(MATRIX))
def url(request: pytest.FixtureRequest) -> str:
    return matrix_url(request)


@pytest.fixture
def into_url(url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database that does not exist yet, on the same server (dropped afterwards)."""
    if url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"backout_into_{uuid.uuid4().hex[:10]}"
    if dialect_of(url) == "mysql":
        admin = str(request.getfixturevalue("mysql_admin_url"))
        yield mysql_url_for(admin, name)
        conn = mysql_connect(admin, database=None)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()
        return
    import psycopg

    admin = str(request.getfixturevalue("pg_admin_url"))
    yield f"{admin.rpartition('/')[0]}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def example_for(url: str) -> str:
    return {"sqlite": "vouchers-sqlite", "mysql": "vouchers-mysql"}.get(dialect_of(url), "vouchers")


def sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run ``statement``, its ``"quoted"`` identifiers in backticks on MySQL (no string here
    is double-quoted)."""
    if dialect_of(url) == "mysql":
        statement = statement.replace('"', "`")
    return run_sql(url, statement)


def migrated(tmp_path: Path, url: str, *, scale: int = 60) -> Path:
    """The vouchers example, migrated and filled with sample rows."""
    name = example_for(url)
    project = copy_example(name, tmp_path)
    wait_for_shared_server_locks(project, url)
    result = run(["up"], project=project, url=url)
    assert result.exit_code == 0, result.output
    fill(name, url, scale=scale, seed=3)
    return project


def records(project: Path) -> list[BackupRecord]:
    return BackupCatalog(project / ".backout" / "backups").records()


def without_events(state: DbState) -> DbState:
    history = {k: v for k, v in state.history.items() if "events" not in k}
    return DbState(schema=state.schema, data=state.data, history=history)


def events(url: str) -> list[tuple[Any, ...]]:
    return sql(url, f"SELECT event, outcome, backup, details FROM {events_table(url)} ORDER BY id")


def events_table(url: str) -> str:
    return "backout.events" if dialect_of(url) == "postgresql" else "backout_events"


def key(url: str, table: str) -> str:
    return f"public.{table}" if dialect_of(url) == "postgresql" else table


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- taking backups ----------------------------------------------------------------------------


def test_full_and_scoped_backups_are_private_verified_and_catalogued(
    tmp_path: Path, url: str
) -> None:
    project = migrated(tmp_path, url)
    before = db_state(url)
    # PostgreSQL's trust auth ignores the password; MariaDB's root would refuse it (MariaDB's
    # password users: tests/reliability/test_client_secrets.py)
    secret_url = url.replace("postgres@", "postgres:S3cr3tPw@")
    result = run(["backup", "--full"], project=project, url=secret_url)
    assert result.exit_code == 0, result.output
    assert run(["rollback", "--yes"], project=project, url=secret_url).exit_code == 0
    full, scoped = records(project)
    folder = project / ".backout" / "backups"
    assert mode(folder) == 0o700
    assert mode(folder / "catalog.json") == 0o600
    for record in (full, scoped):
        path = folder / record.file
        assert mode(path) == 0o600
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256
        assert path.stat().st_size == record.size
        assert record.schema_fingerprint == before.schema
        assert "S3cr3tPw" not in record.file and "S3cr3tPw" not in record.database
    for path in folder.iterdir():
        assert "S3cr3tPw" not in path.name and Actor.current().user not in path.name
        assert b"S3cr3tPw" not in path.read_bytes()
    assert full.kind == "full" and full.reason == "on demand (full)"
    assert set(full.tables) >= {key(url, t) for t in (*SCOPED, "User", "TokenTransaction")}
    assert scoped.kind == "scoped"
    assert scoped.reason == "before rollback of 20240315000000_add_voucher_system"
    assert set(scoped.tables) == {key(url, t) for t in (*SCOPED, "_prisma_migrations")}
    # The row counts recorded are the database's at the time.
    for table, count in scoped.row_counts.items():
        if "_prisma" not in table:
            assert before.data[table][0] == count
    listed = json.loads(run(["backups", "--json"], project=project, url=url).stdout)
    assert [b["id"] for b in listed["backups"]] == [full.id, scoped.id]
    assert listed["backups"][1]["row_counts"] == dict(scoped.row_counts)
    table = run(["backups"], project=project, url=url)
    assert full.id in table.output and scoped.sha256[:12] in table.output


def test_backup_without_full_is_the_one_the_next_rollback_would_take(
    tmp_path: Path, url: str, into_url: str
) -> None:
    project = migrated(tmp_path, url)
    before = db_state(url)
    plan = json.loads(run(["plan", "--json", "--no-simulate"], project=project, url=url).stdout)
    scope = set(plan["backup"]["tables"])
    assert scope, "the vouchers rollback touches tables"
    result = run(["backup"], project=project, url=url)
    assert result.exit_code == 0, result.output
    (record,) = records(project)
    assert record.kind == "scoped"
    assert scope <= set(record.tables)
    assert key(url, "_prisma_migrations") in record.tables
    assert record.reason.startswith("on demand (scoped to the rollback of 2024")
    result = run(["restore", record.id, "--into", into_url], project=project, url=url)
    assert result.exit_code == 0, result.output
    restored = db_state(into_url)
    assert restored.schema == before.schema
    for table in scope:
        name = table.split(".")[-1]
        match = [k for k in restored.data if k.split(".")[-1] == name]
        assert match and restored.data[match[0]] == before.data[match[0]]
    assert restored.history["_prisma_migrations"] == before.history["_prisma_migrations"]


def test_the_event_log_is_never_in_a_backup(tmp_path: Path, url: str, into_url: str) -> None:
    project = migrated(tmp_path, url)
    assert run(["backup", "--full"], project=project, url=url).exit_code == 0
    (record,) = records(project)
    assert all("events" not in t and "schema_version" not in t for t in record.tables)
    assert run(["restore", record.id, "--into", into_url], project=project, url=url).exit_code == 0
    restored = db_state(into_url)
    assert restored.history[events_table(url)] == [("<absent>",)]


# --- restore --into ----------------------------------------------------------------------------


def test_restore_into_a_new_database_is_identical(tmp_path: Path, url: str, into_url: str) -> None:
    project = migrated(tmp_path, url)
    before = db_state(url)
    assert run(["backup", "--full"], project=project, url=url).exit_code == 0
    (record,) = records(project)
    result = run(["restore", "latest", "--into", into_url], project=project, url=url)
    assert result.exit_code == 0, result.output
    assert "schema fingerprint matches" in result.output
    restored = db_state(into_url)
    assert restored.schema == before.schema == record.schema_fingerprint
    assert restored.data == before.data
    assert restored.history["_prisma_migrations"] == before.history["_prisma_migrations"]
    # The current database was not touched (the on-demand backup added only an event).
    assert without_events(db_state(url)) == without_events(before)
    again = run(["restore", "latest", "--into", into_url], project=project, url=url)
    assert again.exit_code == 2
    assert "--into needs a new" in again.output or "not empty" in again.output


def test_restore_into_of_a_scoped_backup_holds_only_the_scoped_rows(
    tmp_path: Path, url: str, into_url: str
) -> None:
    project = migrated(tmp_path, url)
    before = db_state(url)
    assert run(["rollback", "--yes"], project=project, url=url).exit_code == 0
    (record,) = records(project)
    result = run(["restore", record.id, "--into", into_url], project=project, url=url)
    assert result.exit_code == 0, result.output
    restored = db_state(into_url)
    assert restored.schema == before.schema
    for table, (count, checksum) in restored.data.items():
        if table in {key(url, t) for t in SCOPED}:
            assert (count, checksum) == before.data[table]
        else:
            assert count == 0, table


def test_restore_into_the_current_database_is_refused(tmp_path: Path, url: str) -> None:
    project = migrated(tmp_path, url, scale=10)
    assert run(["backup", "--full"], project=project, url=url).exit_code == 0
    result = run(["restore", "latest", "--into", url], project=project, url=url)
    assert result.exit_code == 2
    assert "new database" in result.output


# --- restore over the current database -----------------------------------------------------------


def test_restore_undoes_a_rollback_exactly(tmp_path: Path, url: str) -> None:
    project = migrated(tmp_path, url)
    before = db_state(url)
    assert run(["rollback", "--yes"], project=project, url=url).exit_code == 0
    assert db_state(url).schema != before.schema
    (scoped,) = records(project)
    result = run(["restore", scoped.id, "--yes"], project=project, url=url)
    assert result.exit_code == 0, result.output
    assert without_events(db_state(url)) == without_events(before)
    _, pre = records(project)
    assert pre.kind == "full" and pre.reason == f"before restore of {scoped.id}"
    event, outcome, backup_id, details = events(url)[-1]
    assert (event, outcome, backup_id) == ("restore", "ok", scoped.id)
    assert json.loads(details)["pre_restore_backup"] == pre.id
    status = json.loads(run(["status", "--json"], project=project, url=url).stdout)
    assert [m["state"] for m in status["migrations"]] == ["applied", "applied"]


def test_restore_of_a_full_backup_after_destructive_changes(tmp_path: Path, url: str) -> None:
    project = migrated(tmp_path, url)
    before = db_state(url)
    assert run(["backup", "--full"], project=project, url=url).exit_code == 0
    (full,) = records(project)
    sql(url, 'DELETE FROM "TokenTransaction" WHERE amount > 10')
    sql(url, 'DROP TABLE "VoucherRedemption"')
    if url.startswith("postgres"):
        sql(url, 'DROP TYPE "VoucherStatus" CASCADE')  # takes the column Voucher.status along
        sql(url, "CREATE TABLE extra (id int PRIMARY KEY)")
    elif dialect_of(url) == "mysql":
        sql(url, 'ALTER TABLE "Voucher" DROP COLUMN status')  # an ENUM column there
        sql(url, "CREATE TABLE extra (id int PRIMARY KEY)")
    else:
        sql(url, "CREATE TABLE extra (id INTEGER PRIMARY KEY)")
    sql(url, 'CREATE INDEX "User_name_idx" ON "User" (name)')
    damaged = db_state(url)
    assert damaged.schema != before.schema and damaged.data != before.data
    result = run(["restore", full.id, "--yes"], project=project, url=url)
    assert result.exit_code == 0, result.output
    assert "Drops 1 table(s) the backup does not have" in result.output
    assert without_events(db_state(url)) == without_events(before)
    pre = records(project)[-1]
    assert pre.reason == f"before restore of {full.id}"
    assert pre.schema_fingerprint == damaged.schema  # the problematic state is kept too
    # ... and it can be restored in turn: back to the damaged state.
    result = run(["restore", pre.id, "--yes"], project=project, url=url)
    assert result.exit_code == 0, result.output
    assert db_state(url).schema == damaged.schema
    assert db_state(url).data == damaged.data


def test_scoped_restore_brings_back_deleted_rows_and_keeps_other_tables(
    tmp_path: Path, url: str
) -> None:
    project = migrated(tmp_path, url)
    from backout.backup.take import take_backup
    from backout.project.config import load_config
    from backout.run.workspace import Workspace

    ws = Workspace.open(load_config(project, url=url))
    with ws.session() as session:
        record = take_backup(ws, session, kind="scoped", tables=["Voucher"], reason="test")
    before = db_state(url)
    sql(url, 'DELETE FROM "VoucherRedemption"')  # references Voucher: not in the backup
    sql(url, 'DELETE FROM "Voucher" WHERE "currentUses" = 0')
    sql(url, "DELETE FROM \"TokenTransaction\" WHERE source = 'voucher_redemption'")
    changed = db_state(url)
    result = run(["restore", record.id, "--yes"], project=project, url=url)
    assert result.exit_code == 0, result.output
    after = db_state(url)
    assert after.schema == before.schema
    assert after.data[key(url, "Voucher")] == before.data[key(url, "Voucher")]
    for table in ("VoucherRedemption", "TokenTransaction", "User"):
        assert after.data[key(url, table)] == changed.data[key(url, table)]


def test_scoped_restore_refuses_when_it_cannot_reproduce_the_schema(
    tmp_path: Path, url: str
) -> None:
    project = migrated(tmp_path, url, scale=20)
    assert run(["rollback", "--yes"], project=project, url=url).exit_code == 0
    sql(url, 'ALTER TABLE "User" ADD COLUMN nickname TEXT')
    before = db_state(url)
    result = run(["restore", "latest", "--yes"], project=project, url=url)
    assert result.exit_code == 2
    assert "cannot bring back the schema exactly" in result.output
    assert "nickname" in result.output and "--into" in result.output
    assert db_state(url) == before
    assert len(records(project)) == 1  # refused before the pre-restore backup


def test_a_failed_restore_changes_nothing(tmp_path: Path, url: str) -> None:
    project = migrated(tmp_path, url, scale=30)
    assert run(["rollback", "--yes"], project=project, url=url).exit_code == 0
    # Every user goes: the backed-up redemptions would point at missing users.
    sql(url, 'DELETE FROM "TokenTransaction"')
    sql(url, 'DELETE FROM "UserTokenBalance"')
    sql(url, 'DELETE FROM "User"')
    before = db_state(url)
    result = run(["restore", "latest", "--yes"], project=project, url=url)
    assert result.exit_code == 2, result.output
    assert "nothing changed" in result.output or "foreign key" in result.output
    event, outcome, _, _ = events(url)[-1]
    assert (event, outcome) == ("restore", "failed")
    if transactional_ddl(url):
        assert without_events(db_state(url)) == without_events(before)
        return
    # MySQL/MariaDB: the restore's DDL committed before its rows could be checked. It stops,
    # journaled, naming the broken key; status says so; the full backup taken first undoes it.
    assert "the restored rows break foreign keys: " in result.output
    assert "VoucherRedemption (userId) point to no row of User" in result.output
    status = run(["status"], project=project, url=url)
    assert status.exit_code == 1
    assert "half-restored" in status.output
    assert "needs attention: 1 restore(s) stopped part-way" in status.stderr
    pre = records(project)[-1]
    assert pre.reason.startswith("before restore of ")
    back = run(["restore", pre.id, "--yes"], project=project, url=url)
    assert back.exit_code == 0, back.output
    assert without_events(db_state(url)) == without_events(before)
    assert run(["status"], project=project, url=url).exit_code == 0


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_backup_is_refused_before_anything_changes(
    tmp_path: Path, url: str, damage: str
) -> None:
    project = migrated(tmp_path, url, scale=20)
    assert run(["backup", "--full"], project=project, url=url).exit_code == 0
    (record,) = records(project)
    sql(url, 'DELETE FROM "VoucherRedemption"')
    before = db_state(url)
    path = project / ".backout" / "backups" / record.file
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    result = run(["restore", record.id, "--yes"], project=project, url=url)
    assert result.exit_code == 2
    assert "damaged" in result.output
    assert db_state(url) == before
    assert len(records(project)) == 1  # no pre-restore backup either


def test_restore_needs_yes_without_a_terminal(tmp_path: Path, url: str) -> None:
    project = migrated(tmp_path, url, scale=10)
    assert run(["backup", "--full"], project=project, url=url).exit_code == 0
    sql(url, 'DELETE FROM "VoucherRedemption"')
    before = db_state(url)
    result = run(["restore", "latest"], project=project, url=url)
    assert result.exit_code == 1
    assert "pass --yes to confirm when not on a terminal" in result.output
    assert db_state(url) == before
    assert len(records(project)) == 1


def test_an_unwritable_backup_folder_stops_the_rollback(tmp_path: Path, url: str) -> None:
    project = migrated(tmp_path, url, scale=10)
    (project / "blocker").write_text("a file, not a folder\n")
    with (project / "backout.toml").open("a", encoding="utf-8") as toml:
        toml.write('backup_dir = "blocker/backups"\n')
    before = db_state(url)
    result = run(["rollback", "--yes"], project=project, url=url)
    assert result.exit_code == 2
    assert "blocker/backups" in result.output and "not writable" in result.output
    assert db_state(url) == before
    result = run(["backup", "--full"], project=project, url=url)
    assert result.exit_code == 2 and "not writable" in result.output


def test_unknown_backup_names_the_closest(tmp_path: Path, url: str) -> None:
    project = migrated(tmp_path, url, scale=5)
    assert run(["backup"], project=project, url=url).exit_code == 0
    (record,) = records(project)
    result = run(["restore", record.id[:-2] + "zz", "--yes"], project=project, url=url)
    assert result.exit_code == 2
    assert record.id in result.output


def test_files_are_created_private_even_with_a_permissive_umask(tmp_path: Path, url: str) -> None:
    project = migrated(tmp_path, url, scale=5)
    old = os.umask(0)
    try:
        assert run(["backup", "--full"], project=project, url=url).exit_code == 0
    finally:
        os.umask(old)
    folder = project / ".backout" / "backups"
    assert {mode(p) for p in folder.iterdir()} == {0o600}


def test_backups_names_the_partial_file_of_an_interrupted_backup(
    tmp_path: Path, sqlite_url: str
) -> None:
    project = migrated(tmp_path, sqlite_url, scale=5)
    assert run(["backup"], project=project, url=sqlite_url).exit_code == 0
    (kept,) = records(project)
    folder = project / ".backout" / "backups"
    # What a backup killed mid-dump (kill -9: no cleanup runs) leaves behind.
    stray = folder / "20261207T010203Z-scoped-dev.sqlite3"
    stray.write_bytes(b"SQLite format 3\0" + b"\0" * 4080)
    listed = run(["backups"], project=project, url=sqlite_url)
    assert listed.exit_code == 0, listed.stderr
    assert kept.id in listed.output
    assert listed.stderr.startswith(
        "warning: 1 file(s) in the backup folder are in no catalogued backup (4.0 KiB): "
        "20261207T010203Z-scoped-dev.sqlite3. A backup interrupted before it was verified"
    )
    doc = json.loads(run(["backups", "--json"], project=project, url=sqlite_url).stdout)
    assert doc["uncatalogued"] == [{"file": stray.name, "size": 4096}]
    assert [b["id"] for b in doc["backups"]] == [kept.id]
    # Never restored from: it is not in the catalog.
    refused = run(["restore", "20261207T010203Z", "--yes"], project=project, url=sqlite_url)
    assert refused.exit_code == 2
    assert stray.exists() and records(project) == [kept]
    stray.unlink()
    assert run(["backups"], project=project, url=sqlite_url).stderr == ""
