"""Prisma Migrate layout.

- ``prisma/migrations/<ts>_<name>/migration.sql``: forward migrations, in folder-name order;
- rollbacks: ``prisma/rollback/<ts>_<name>_rollback.sql`` (the seeds' convention) or
  ``prisma/migrations/<ts>_<name>/down.sql`` (Prisma's documentation), never both;
- partial rollbacks: ``<ts>_<name>_rollback.<part>.sql`` in the rollback folder, or
  ``down.<part>.sql`` in the migration folder;
- history: Prisma's own ``_prisma_migrations`` table.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Final

from backout.model.errors import ProjectError
from backout.model.script import ScriptKind, load_script
from backout.project.layouts.common import (
    PART_NAME,
    ROLLBACK_FILE,
    RollbackIndex,
    split_id,
)
from backout.project.migration import Migration, Project, display_path

DOWN_FILE = re.compile(r"^down(?:\.(?P<part>[^.]+))?\.sql$")
#: Prisma's datasource provider (``migration_lock.toml``, ``schema.prisma``) → the backout
#: dialect its migrations are written for; other providers (cockroachdb, sqlserver...) have none
PROVIDER_DIALECTS: Final = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "sqlite": "sqlite",
    "mysql": "mysql",
}


def provider_dialect(provider: str | None) -> str | None:
    """The backout dialect Prisma's ``provider`` stands for; None when there is none."""
    return PROVIDER_DIALECTS.get((provider or "").lower())


def load(root: Path, folder: Path, rollback_dir: Path | None) -> Project:
    """Read a Prisma project whose migrations are in ``folder``."""

    def rel(path: Path) -> str:
        return display_path(root, path)

    index = RollbackIndex()
    migrations: list[Migration] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.is_dir():
            migrations.append(_load_migration(entry, rel, index))
        elif entry.suffix == ".sql":
            # Prisma ignores it, but it is most likely a misplaced rollback or migration:
            # never skip one silently.
            raise ProjectError(
                "unrecognised SQL file in the migrations folder (a migration is a folder "
                "holding migration.sql; rollbacks go in prisma/rollback/ or the migration's "
                "folder as down.sql)",
                path=rel(entry),
            )

    rollbacks = rollback_dir if rollback_dir is not None else folder.parent / "rollback"
    if rollbacks.is_dir():
        index.scan_rollback_folder(rollbacks, rel(rollbacks))
    elif rollback_dir is not None:
        raise ProjectError("rollback folder does not exist", path=rel(rollback_dir))

    lock = folder / "migration_lock.toml"
    provider, source = _provider(lock, rel(lock)), rel(lock)
    if provider is None:
        provider, source = _schema_provider(folder.parent, rel)
    return Project(
        root=root,
        layout="prisma",
        migrations_dir=folder,
        rollback_dir=rollbacks,
        migrations=tuple(index.attach(migrations)),
        ledger="prisma",
        provider=provider,
        provider_source=source,
    )


def _load_migration(entry: Path, rel: Callable[[Path], str], index: RollbackIndex) -> Migration:
    """One migration folder: its migration.sql; rollbacks found beside it go to ``index``."""
    script_path = entry / "migration.sql"
    if not script_path.is_file():
        raise ProjectError(
            "migration folder without migration.sql",
            path=rel(entry),
            hint="remove the folder, or restore its migration.sql",
        )
    migration_id = entry.name
    version, name = split_id(migration_id)
    up = load_script(script_path, rel(script_path), ScriptKind.FORWARD)
    for extra in sorted(entry.iterdir()):
        if extra.name == "migration.sql" or not extra.is_file() or extra.suffix != ".sql":
            continue
        down = DOWN_FILE.match(extra.name) or ROLLBACK_FILE.match(extra.name)
        part = down["part"] if down else None
        if down is None or (part is not None and not PART_NAME.match(part)):
            raise ProjectError(
                "unrecognised SQL file in a migration folder "
                "(expected down.sql or down.<part>.sql)",
                path=rel(extra),
            )
        if "id" in down.groupdict() and down["id"] != migration_id:
            raise ProjectError(
                f"rollback names migration '{down['id']}' but sits in {migration_id}/",
                path=rel(extra),
            )
        kind = ScriptKind.PARTIAL if part else ScriptKind.ROLLBACK
        index.add(migration_id, load_script(extra, rel(extra), kind), part)
    return Migration(
        id=migration_id, version=version, name=name, key=migration_id, up=up, down=None
    )


#: ``datasource db { provider = "postgresql" … }`` in a Prisma schema (comments removed first)
_DATASOURCE_PROVIDER = re.compile(
    r"\bdatasource\s+\w+\s*\{[^}]*?\bprovider\s*=\s*\"(?P<provider>[^\"]+)\"", re.S
)


def _schema_provider(prisma_dir: Path, rel: Callable[[Path], str]) -> tuple[str | None, str]:
    """The datasource provider of ``prisma/schema.prisma`` (or of the ``prisma/schema/``
    folder of a multi-file schema), when migration_lock.toml names none."""
    candidates = [prisma_dir / "schema.prisma"]
    folder = prisma_dir / "schema"
    if folder.is_dir():
        candidates.extend(sorted(folder.glob("*.prisma")))
    for path in candidates:
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # an unreadable schema is not ours to report: the migrations are
        text = re.sub(r"//[^\n]*", "", text)
        match = _DATASOURCE_PROVIDER.search(text)
        if match:
            return match["provider"], rel(path)
    return None, ""


def _provider(lock_file: Path, display: str) -> str | None:
    if not lock_file.is_file():
        return None
    try:
        data = tomllib.loads(lock_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProjectError(f"cannot read migration_lock.toml: {exc}", path=display) from exc
    provider = data.get("provider")
    return str(provider) if provider else None
