"""Backups of a fleet's targets taken at the same second each reserve an id of their own
(backout.backup.take): the id must be free of any file, also for a database name with a dot,
or the reservation would retry the same id for ever."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from backout.backup.catalog import BackupCatalog

WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_a_file_left_by_a_killed_backup_takes_its_id_even_with_a_dot(tmp_path: Path) -> None:
    catalog = BackupCatalog(tmp_path)
    for label in ("shop", "app.v2"):
        first = catalog.new_id("full", label, WHEN)
        (tmp_path / f"{first}.dump").write_bytes(b"")  # reserved, no record yet
        assert catalog.new_id("full", label, WHEN) == f"{first}-2", label
