"""The migration model every layout produces, and resolution of user-given migration ids."""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from backout.model.errors import UsageError
from backout.model.script import Script

#: what follows a migration id in the names of its files
_FILE_SUFFIX = re.compile(r"(?:_rollback(?:\.[^./]+)?|\.(?:up|down)(?:\.[^./]+)?)?\.sql$")


@dataclass(frozen=True)
class Migration:
    """A forward migration with its optional full rollback and named partial rollbacks."""

    #: what users type and see: the Prisma folder name, or the file stem ``<version>_<name>``
    id: str
    #: the sortable version prefix (digits), or the whole id when there is none
    version: str
    name: str
    #: the key this migration has in history: the Prisma folder name, or the version
    key: str
    up: Script
    down: Script | None
    #: partial (data-only) rollbacks, sorted by name
    partials: tuple[tuple[str, Script], ...] = ()

    def partial(self, name: str) -> Script | None:
        """The partial rollback called ``name``, if any."""
        return dict(self.partials).get(name)


@dataclass(frozen=True)
class Project:
    """A migrations folder as one layout reads it; no database access."""

    root: Path
    layout: str
    migrations_dir: Path
    rollback_dir: Path | None
    migrations: tuple[Migration, ...]
    #: where applied state lives: "prisma" (_prisma_migrations) or "backout" (own tables)
    ledger: str
    #: provider declared by Prisma's migration_lock.toml ("postgresql", "sqlite", "mysql"), or
    #: else by the datasource of its schema.prisma
    provider: str | None = None
    #: the file that declared :attr:`provider` (shown in messages)
    provider_source: str = "prisma/migrations/migration_lock.toml"
    #: scripts the host tool re-runs whenever they change and backout only lists (Flyway's
    #: repeatable ``R__`` migrations): never applied or rolled back by backout
    repeatables: tuple[Script, ...] = ()

    def rel(self, path: Path) -> str:
        """A path as shown to users: relative to the project root when inside it."""
        return display_path(self.root, path)

    def by_key(self) -> dict[str, Migration]:
        """Migrations indexed by their history key."""
        return {m.key: m for m in self.migrations}

    def find(self, ref: str) -> Migration:
        """The migration a user means by ``ref`` (id, version or a path to one of its files).

        Suggests the closest id when nothing matches.
        """
        ref = ref.strip().rstrip("/")
        if ref.endswith(".sql"):
            # a pasted file name: 1_a.up.sql, 1_a_rollback.part.sql, <id>/migration.sql
            path = Path(ref)
            in_folder = path.name in ("migration.sql", "down.sql") or path.name.startswith("down.")
            ref = path.parent.name if in_folder and path.parent.name else path.name
            ref = _FILE_SUFFIX.sub("", ref)
        ref = Path(ref).name if "/" in ref else ref
        exact = [m for m in self.migrations if ref in (m.id, m.key)]
        if not exact:
            exact = [m for m in self.migrations if m.version == ref]
        if len(exact) == 1:
            return exact[0]
        if len(exact) > 1:
            ids = ", ".join(m.id for m in exact)
            raise UsageError(f"migration reference {ref!r} is ambiguous: {ids}")
        close = difflib.get_close_matches(ref, [m.id for m in self.migrations], n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}?" if close else "see `backout status` for the ids"
        raise UsageError(f"unknown migration {ref!r}", hint=hint)

    def index_of(self, migration: Migration) -> int:
        """Position of ``migration`` in order."""
        found = self._positions.get(migration.key)
        if found is not None:
            return found
        return next(i for i, m in enumerate(self.migrations) if m.key == migration.key)

    @functools.cached_property
    def _positions(self) -> dict[str, int]:
        """Each key's first position: a walk asks :meth:`index_of` for every migration."""
        positions: dict[str, int] = {}
        for index, migration in enumerate(self.migrations):
            positions.setdefault(migration.key, index)
        return positions


@functools.lru_cache(maxsize=256)
def _resolved(folder: Path) -> Path:
    return folder.resolve()


def display_path(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` for messages; a symlinked file keeps its own name.

    Folders are resolved once each (cached): a project has thousands of files in few folders.
    """
    try:
        return str((_resolved(path.parent) / path.name).relative_to(_resolved(root)))
    except ValueError:
        return str(path)
