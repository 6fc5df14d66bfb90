"""Layouts turn a migrations folder into :class:`~backout.project.migration.Project` (no database
access).

Detection looks at the project root: ``prisma/migrations`` (Prisma), or ``migrations/`` /
``db/migrations/`` holding ``*.up.sql`` files (plain, golang-migrate style) or ``*.sql`` files with
``-- migrate:up`` sections (dbmate), or Flyway's locations (``db/migration``,
``src/main/resources/db/migration``, or those ``flyway.toml`` / ``flyway.conf`` name) holding
``V<version>__<description>.sql`` files. ``backout.toml`` can name the layout and folder instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from backout.model.errors import ProjectError
from backout.project.layouts import dbmate, flyway, plain, prisma
from backout.project.migration import Project

LAYOUTS: dict[str, Callable[[Path, Path, Path | None], Project]] = {
    "prisma": prisma.load,
    "plain": plain.load,
    "dbmate": dbmate.load,
    "flyway": flyway.load,
}

DEFAULT_DIRS: dict[str, tuple[str, ...]] = {
    "prisma": ("prisma/migrations",),
    "plain": ("migrations", "db/migrations"),
    "dbmate": ("db/migrations", "migrations"),
    "flyway": ("db/migration", "src/main/resources/db/migration"),
}


def _shape_of(folder: Path) -> set[str]:
    """Which layouts the contents of ``folder`` look like."""
    shapes: set[str] = set()
    if not folder.is_dir():
        return shapes
    for entry in folder.iterdir():
        if entry.is_dir() and (entry / "migration.sql").is_file():
            shapes.add("prisma")
        elif entry.is_file() and plain.MIGRATION_FILE.match(entry.name):
            shapes.add("plain")
        elif entry.is_file() and entry.suffix == ".sql" and dbmate.looks_like_dbmate(entry):
            shapes.add("dbmate")
    if not shapes and flyway.holds_migration(folder, flyway.FlywaySettings()):
        shapes.add("flyway")
    return shapes


def detect(root: Path, migrations_dir: Path | None = None) -> tuple[str, Path]:
    """Find the layout and migrations folder of the project at ``root``.

    Raises ProjectError when there is none, or when more than one matches.
    """
    if migrations_dir is not None:
        shapes = _shape_of(migrations_dir)
        if not migrations_dir.is_dir():
            raise ProjectError("migrations folder does not exist", path=migrations_dir)
        if len(shapes) == 1:
            return shapes.pop(), migrations_dir
        if not shapes:
            if migrations_dir.parts[-2:] == ("prisma", "migrations"):
                return "prisma", migrations_dir
            raise ProjectError(
                "cannot tell the layout of an empty migrations folder",
                path=migrations_dir,
                hint="set layout = 'prisma' | 'plain' | 'dbmate' | 'flyway' in backout.toml",
            )
        raise ProjectError(
            f"ambiguous layout: the folder holds {' and '.join(sorted(shapes))} migrations",
            path=migrations_dir,
            hint="keep one layout per folder, or set layout in backout.toml",
        )
    found: dict[str, Path] = {}
    if (root / "prisma" / "migrations").is_dir():
        found["prisma"] = root / "prisma" / "migrations"
    for rel in ("migrations", "db/migrations"):
        folder = root / rel
        for shape in _shape_of(folder) - {"prisma"}:
            found.setdefault(shape, folder)
    location = flyway.find_location(root)
    if location is not None:
        found.setdefault("flyway", location)
    if not found:
        raise ProjectError(
            f"no migrations folder found in {root} "
            "(looked for prisma/migrations, migrations/, db/migrations/ and Flyway's "
            "db/migration/)",
            hint="run `backout init --layout plain` to start one, or set migrations_dir",
        )
    if len(found) > 1:
        listing = ", ".join(f"{k} ({v.relative_to(root)})" for k, v in sorted(found.items()))
        raise ProjectError(
            f"ambiguous layout: found {listing}",
            hint="set layout (and migrations_dir) in backout.toml",
        )
    ((layout, folder),) = found.items()
    return layout, folder


def load_project(
    root: Path,
    *,
    layout: str | None = None,
    migrations_dir: Path | None = None,
    rollback_dir: Path | None = None,
) -> Project:
    """Read the project at ``root`` into a validated Project."""
    if layout is not None and layout not in LAYOUTS:
        raise ProjectError(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    if layout is None:
        layout, folder = detect(root, migrations_dir)
    else:
        folder = migrations_dir or next(
            (root / d for d in DEFAULT_DIRS[layout] if (root / d).is_dir()),
            root / DEFAULT_DIRS[layout][0],
        )
        if not folder.is_dir():
            raise ProjectError("migrations folder does not exist", path=folder)
    return LAYOUTS[layout](root, folder, rollback_dir)
