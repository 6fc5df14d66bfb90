"""Plain SQL folder (golang-migrate style).

- ``<version>_<name>.up.sql`` and ``<version>_<name>.down.sql``, version all digits;
- partial rollbacks: ``<version>_<name>.down.<part>.sql`` or
  ``<version>_<name>_rollback.<part>.sql``;
- history: backout's own tables, keyed by version.
"""

from __future__ import annotations

import re
from pathlib import Path

from backout.model.errors import ProjectError
from backout.model.script import ScriptKind, load_script
from backout.project.layouts.common import (
    ROLLBACK_FILE,
    RollbackIndex,
    check_readable,
    check_unique_versions,
    version_order,
)
from backout.project.migration import Migration, Project, display_path

MIGRATION_FILE = re.compile(
    r"^(?P<version>\d+)_(?P<name>[^.]+)\.(?P<dir>up|down)(?:\.(?P<part>[A-Za-z0-9][\w-]*))?\.sql$"
)


def load(root: Path, folder: Path, rollback_dir: Path | None) -> Project:
    """Read a plain SQL project whose migrations are in ``folder``."""

    def rel(path: Path) -> str:
        return display_path(root, path)

    index = RollbackIndex()
    migrations: list[Migration] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        check_readable(entry, rel(entry))
        if not entry.is_file() or entry.suffix != ".sql":
            continue
        match = MIGRATION_FILE.match(entry.name)
        rollback = ROLLBACK_FILE.match(entry.name)
        if match is None and rollback is not None and rollback["part"]:
            index.add(
                rollback["id"], load_script(entry, rel(entry), ScriptKind.PARTIAL), rollback["part"]
            )
            continue
        if match is None:
            raise ProjectError(
                "unrecognised SQL file (expected <version>_<name>.up.sql or .down.sql)",
                path=rel(entry),
            )
        migration_id = f"{match['version']}_{match['name']}"
        if match["dir"] == "up":
            if match["part"]:
                raise ProjectError("a forward migration cannot have a part name", path=rel(entry))
            up = load_script(entry, rel(entry), ScriptKind.FORWARD)
            migrations.append(
                Migration(
                    id=migration_id,
                    version=match["version"],
                    name=match["name"],
                    key=match["version"],
                    up=up,
                    down=None,
                )
            )
        else:
            part = match["part"]
            kind = ScriptKind.PARTIAL if part else ScriptKind.ROLLBACK
            index.add(migration_id, load_script(entry, rel(entry), kind), part)

    if rollback_dir is not None:
        if not rollback_dir.is_dir():
            raise ProjectError("rollback folder does not exist", path=rel(rollback_dir))
        index.scan_rollback_folder(rollback_dir, rel(rollback_dir))
    migrations.sort(key=version_order)
    check_unique_versions(migrations)
    return Project(
        root=root,
        layout="plain",
        migrations_dir=folder,
        rollback_dir=rollback_dir,
        migrations=tuple(index.attach(migrations)),
        ledger="backout",
    )
