"""Pieces every layout shares: pairing rollback files with migrations, ordering, duplicates."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from backout.model.errors import ProjectError
from backout.model.script import Script, ScriptKind, load_script
from backout.project.migration import Migration

#: ``<id>_rollback.sql`` and ``<id>_rollback.<part>.sql`` (the seeds' convention)
ROLLBACK_FILE = re.compile(r"^(?P<id>.+)_rollback(?:\.(?P<part>[A-Za-z0-9][A-Za-z0-9_-]*))?\.sql$")
PART_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
VERSION_NAME = re.compile(r"^(?P<version>\d+)(?:_(?P<name>.*))?$")


def split_id(migration_id: str) -> tuple[str, str]:
    """``20240101000000_add_users`` → (``20240101000000``, ``add_users``)."""
    match = VERSION_NAME.match(migration_id)
    if match is None:
        return migration_id, migration_id
    return match["version"], match["name"] or ""


@dataclass
class RollbackSet:
    """Rollback scripts found for one migration id, before pairing."""

    down: list[Script] = field(default_factory=list)
    partials: dict[str, list[Script]] = field(default_factory=dict)

    def add(self, script: Script, part: str | None) -> None:
        """Record a full rollback (``part`` None) or a partial one."""
        if part is None:
            self.down.append(script)
        else:
            self.partials.setdefault(part, []).append(script)


class RollbackIndex:
    """Rollback files found anywhere in a project, keyed by the migration id they name."""

    def __init__(self) -> None:
        self.by_id: dict[str, RollbackSet] = {}

    def add(self, migration_id: str, script: Script, part: str | None) -> None:
        """Record that ``script`` rolls back ``migration_id`` (fully, or the ``part`` partial)."""
        self.by_id.setdefault(migration_id, RollbackSet()).add(script, part)

    def scan_rollback_folder(self, folder: Path, rel: str) -> None:
        """Read every ``*_rollback[.part].sql`` in ``folder``; other .sql files are errors."""
        for entry in sorted(folder.iterdir()):
            if not entry.is_file() or entry.suffix != ".sql":
                continue
            display = f"{rel}/{entry.name}"
            match = ROLLBACK_FILE.match(entry.name)
            if match is None:
                raise ProjectError(
                    "unrecognised file in the rollback folder "
                    "(expected <migration>_rollback.sql or <migration>_rollback.<part>.sql)",
                    path=display,
                )
            part = match["part"]
            kind = ScriptKind.PARTIAL if part else ScriptKind.ROLLBACK
            self.add(match["id"], load_script(entry, display, kind), part)

    def attach(self, migrations: list[Migration]) -> list[Migration]:
        """Pair rollbacks with migrations; an orphan or doubled rollback file is an error."""
        known = {m.id: m for m in migrations}
        by_key = {m.key: m for m in migrations}
        result: list[Migration] = []
        for migration_id, found in self.by_id.items():
            if migration_id not in known and migration_id not in by_key:
                script = (found.down or next(iter(found.partials.values())))[0]
                close = difflib.get_close_matches(migration_id, list(known), n=1, cutoff=0.6)
                hint = f"did you mean {close[0]}?" if close else None
                raise ProjectError(
                    f"rollback for migration '{migration_id}', which does not exist",
                    path=script.display,
                    hint=hint,
                )
        for migration in migrations:
            # A rollback file may name the migration by id or by key (its version): both count.
            sets = [
                self.by_id[k]
                for k in dict.fromkeys((migration.id, migration.key))
                if k in self.by_id
            ]
            if not sets:
                result.append(migration)
                continue
            found = RollbackSet()
            for each in sets:
                found.down.extend(each.down)
                for part, scripts in each.partials.items():
                    found.partials.setdefault(part, []).extend(scripts)
            if len(found.down) > 1:
                files = " and ".join(s.display for s in found.down)
                raise ProjectError(
                    f"migration {migration.id} has two rollback scripts: {files}",
                    path=found.down[1].display,
                    hint="keep one of them",
                )
            partials: list[tuple[str, Script]] = []
            for part, scripts in sorted(found.partials.items()):
                if len(scripts) > 1:
                    files = " and ".join(s.display for s in scripts)
                    raise ProjectError(
                        f"migration {migration.id} has two partial rollbacks '{part}': {files}",
                        path=scripts[1].display,
                    )
                partials.append((part, scripts[0]))
            result.append(
                Migration(
                    id=migration.id,
                    version=migration.version,
                    name=migration.name,
                    key=migration.key,
                    up=migration.up,
                    down=found.down[0] if found.down else migration.down,
                    partials=tuple(partials),
                )
            )
        return result


def check_unique_versions(migrations: list[Migration]) -> None:
    """Two migrations with the same history key cannot both be tracked: refuse."""
    seen: dict[str, Migration] = {}
    for migration in migrations:
        other = seen.get(migration.key)
        if other is not None:
            raise ProjectError(
                f"two migrations share version {migration.key}: {other.id} and {migration.id}",
                path=migration.up.display,
                hint="give one of them a new version",
            )
        seen[migration.key] = migration


def check_readable(entry: Path, display: str) -> None:
    """A ``.sql`` entry that is neither file nor folder (a dangling link, a device) is an error."""
    if entry.suffix == ".sql" and not entry.is_file() and not entry.is_dir():
        raise ProjectError("cannot read file (dangling link or special file)", path=display)


def version_order(migration: Migration) -> tuple[int, str]:
    """Sort key for numbered layouts: numeric version, then id."""
    return (int(migration.version) if migration.version.isdigit() else -1, migration.id)
