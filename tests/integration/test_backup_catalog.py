"""The backup catalog on its own: naming, lookup, permissions, damage (no database needed)."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest

from backout.backup.catalog import BackupCatalog, BackupRecord
from backout.model.errors import BackupError, UsageError

WHEN = dt.datetime(2026, 11, 22, 4, 54, 33, tzinfo=dt.UTC)


def record(backup_id: str, **changes: object) -> BackupRecord:
    fields: dict[str, object] = {
        "id": backup_id,
        "file": f"{backup_id}.dump",
        "kind": "scoped",
        "dialect": "postgresql",
        "database": "postgresql://app:***@db.example/appdb",
        "tables": ("public.Voucher", "public._prisma_migrations"),
        "created_at": WHEN,
        "created_by": "backout/0.1.0 alice@host pid 1",
        "reason": "before rollback of 20240315000000_add_voucher_system",
        "size": 123,
        "sha256": "ab" * 32,
        "schema_fingerprint": "cd" * 32,
        "row_counts": {"public.Voucher": 10, "public._prisma_migrations": 2},
        "tool": "pg_dump 15.20",
    }
    fields.update(changes)
    return BackupRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
def catalog(tmp_path: Path) -> BackupCatalog:
    catalog = BackupCatalog(tmp_path / "backups")
    catalog.prepare()
    for backup_id in (
        "20261122T045433Z-scoped-appdb",
        "20261122T050000Z-full-appdb",
        "20261123T010000Z-scoped-appdb",
    ):
        catalog.append(record(backup_id))
    return catalog


def test_records_round_trip_in_order(catalog: BackupCatalog) -> None:
    records = catalog.records()
    assert [r.id for r in records] == [
        "20261122T045433Z-scoped-appdb",
        "20261122T050000Z-full-appdb",
        "20261123T010000Z-scoped-appdb",
    ]
    assert records[0] == record("20261122T045433Z-scoped-appdb")
    assert records[0].row_counts["public.Voucher"] == 10


def test_get_by_id_prefix_and_latest(catalog: BackupCatalog) -> None:
    assert catalog.get("latest").id == "20261123T010000Z-scoped-appdb"
    assert catalog.get("20261122T0500").id == "20261122T050000Z-full-appdb"
    assert catalog.get("20261122T045433Z-scoped-appdb").kind == "scoped"
    with pytest.raises(UsageError, match="ambiguous"):
        catalog.get("20261122")
    with pytest.raises(UsageError, match="no backup") as caught:
        catalog.get("20261122T045433Z-scoped-appdc")
    assert "20261122T045433Z-scoped-appdb" in (caught.value.hint or "")


def test_catalog_and_folder_are_private(catalog: BackupCatalog) -> None:
    assert stat.S_IMODE(catalog.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(catalog.path.stat().st_mode) == 0o600
    assert not [p for p in catalog.folder.iterdir() if p.name.endswith(".tmp")]


def test_new_ids_are_unique_and_hold_no_secrets(catalog: BackupCatalog) -> None:
    first = catalog.new_id("scoped", "app db/../x", WHEN)
    assert first == "20261122T045433Z-scoped-app-db-..-x"
    taken = catalog.new_id("scoped", "appdb", WHEN)
    assert taken == "20261122T045433Z-scoped-appdb-2"


def test_a_damaged_catalog_is_reported(catalog: BackupCatalog) -> None:
    catalog.path.write_text("{not json")
    with pytest.raises(BackupError, match="damaged"):
        catalog.records()
    catalog.path.write_text(json.dumps({"format": 99, "backups": []}))
    with pytest.raises(BackupError, match="unsupported format"):
        catalog.records()


def test_an_empty_catalog_says_how_to_take_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no backups") as caught:
        BackupCatalog(tmp_path / "none").get("latest")
    assert "backout backup" in (caught.value.hint or "")


def test_prepare_names_an_unusable_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(BackupError, match=r"file/backups is not writable"):
        BackupCatalog(tmp_path / "file" / "backups").prepare()
