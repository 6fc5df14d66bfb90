"""``backout init`` and ``backout new``: configuration and migration/rollback skeletons."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from backout.model.errors import ProjectError, UsageError
from backout.project.config import CONFIG_FILE, Config
from backout.project.layouts import DEFAULT_DIRS, detect, load_project
from backout.project.layouts.flyway import read_settings, undo_path
from backout.project.migration import Migration, Project

ROLLBACK_HEADER = """\
-- Rollback of {id}
-- Directives: see docs/directives.md. Fill them in; `backout lint` checks them.
-- backout:risk HIGH
-- backout:impact Describe what this rollback changes (tables, columns, types dropped or restored)
-- backout:data-loss Describe which data cannot come back, or delete this line
-- backout:manual Describe a step a person must do afterwards, or delete this line
-- A postcondition that must hold afterwards, for example:
--   -- backout:verify SELECT NOT EXISTS (SELECT 1 FROM child c LEFT JOIN parent p ...)

"""

FORWARD_HEADER = """\
-- Migration {id}
-- Write the forward change here; its rollback is {rollback}.

"""

CONFIG_TEMPLATE = """\
# backout configuration: see docs/configuration.md
layout = "{layout}"
migrations_dir = "{migrations_dir}"
{rollback_line}
# The database URL comes from DATABASE_URL (environment, or .env as with Prisma).
# Setting database_url here is possible, but keep passwords out of this file.

# A server where backout may create scratch databases (rehearsals, simulated impact):
# shadow_url = "postgresql://postgres@localhost:5432/postgres"

backup_dir = ".backout/backups"
lock_timeout = "2s"
lock_retries = 5
statement_timeout = "0"   # 0: no limit

[hooks]
# Each hook is a shell command, given DATABASE_URL of the database it concerns.
# stop_app = "systemctl stop myapp"
# before_rollback = ""
# after_rollback = "npx prisma generate"
# deploy_previous = "./deploy.sh --previous"
# smoke = "curl -fsS http://localhost:3000/health"
# timeout = "5m"
"""


@dataclass
class InitResult:
    """What ``init`` wrote."""

    config_file: Path
    layout: str
    migrations_dir: Path
    created: list[Path] = field(default_factory=list)
    gitignore_updated: bool = False


def init(config: Config, *, layout: str | None = None, force: bool = False) -> InitResult:
    """Write backout.toml for the project, detecting its layout unless one is given."""
    root = config.root
    target = root / CONFIG_FILE
    if target.exists() and not force:
        raise UsageError(f"{target} already exists", hint="pass --force to overwrite it")
    created: list[Path] = []
    if layout is None:
        try:
            layout, folder = detect(root, config.migrations_dir)
        except ProjectError as exc:
            raise UsageError(
                f"cannot detect the layout: {exc}",
                hint="pass --layout prisma|plain|dbmate|flyway to start a new migrations folder",
            ) from exc
    else:
        if layout not in DEFAULT_DIRS:
            raise UsageError(f"unknown layout {layout!r} (known: prisma, plain, dbmate, flyway)")
        folder = config.migrations_dir or next(
            (root / d for d in DEFAULT_DIRS[layout] if (root / d).is_dir()),
            root / DEFAULT_DIRS[layout][0],
        )
        if not folder.exists():
            folder.mkdir(parents=True)
            created.append(folder)
    if layout == "prisma" and not (folder.parent / "rollback").exists():
        (folder.parent / "rollback").mkdir(parents=True)
        created.append(folder.parent / "rollback")
    rollback_line = (
        f'rollback_dir = "{folder.parent.relative_to(root) / "rollback"}"'
        if layout == "prisma"
        else "# rollback_dir: rollbacks sit beside the migrations in this layout"
    )
    target.write_text(
        CONFIG_TEMPLATE.format(
            layout=layout,
            migrations_dir=folder.relative_to(root),
            rollback_line=rollback_line,
        ),
        encoding="utf-8",
    )
    return InitResult(
        config_file=target,
        layout=layout,
        migrations_dir=folder,
        created=created,
        gitignore_updated=_ignore_backups(root),
    )


def _ignore_backups(root: Path) -> bool:
    """Backups hold data: keep them out of git when the project uses it."""
    ignore = root / ".gitignore"
    if not (root / ".git").exists() and not ignore.exists():
        return False
    existing = ignore.read_text(encoding="utf-8") if ignore.exists() else ""
    if any(line.strip() in {".backout", ".backout/"} for line in existing.splitlines()):
        return False
    prefix = "" if not existing or existing.endswith("\n") else "\n"
    block = "# backout: backups hold data; lock files are per run\n.backout/\n*.backout-lock\n"
    ignore.write_text(existing + prefix + block, "utf-8")
    return True


@dataclass
class NewResult:
    """Files ``new`` created."""

    migration_id: str
    created: list[Path]


_NAME = re.compile(r"[^a-z0-9]+")


def _slug(name: str) -> str:
    slug = _NAME.sub("_", name.strip().lower()).strip("_")
    if not slug:
        raise UsageError(f"migration name {name!r} has no letters or digits")
    return slug


def new(config: Config, name: str, *, now: dt.datetime | None = None) -> NewResult:
    """Scaffold a migration and its rollback; or, for an existing id, only the missing rollback."""
    project = load_project(
        config.root,
        layout=config.layout,
        migrations_dir=config.migrations_dir,
        rollback_dir=config.rollback_dir,
    )
    existing = next((m for m in project.migrations if name in (m.id, m.key)), None)
    if existing is not None:
        return _rollback_only(project, existing)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d%H%M%S")
    versions = {m.version for m in project.migrations}
    while stamp in versions:
        stamp = str(int(stamp) + 1)
    migration_id = f"{stamp}_{_slug(name)}"
    if project.layout == "flyway":
        settings = read_settings(project.root)
        migration_id = f"{settings.prefix}{stamp}{settings.separator}{_slug(name)}"
    created = _write_pair(project, migration_id)
    return NewResult(migration_id=migration_id, created=created)


def _rollback_path(project: Project, migration_id: str) -> Path:
    folder = project.migrations_dir
    if project.layout == "prisma":
        rollback_dir = project.rollback_dir or folder.parent / "rollback"
        return rollback_dir / f"{migration_id}_rollback.sql"
    if project.layout == "flyway":
        # Flyway's undo script: U<version>__<description>.sql beside V<version>__...
        return undo_path(project.root, folder / f"{migration_id}.sql")
    return folder / f"{migration_id}.down.sql"


def _write_pair(project: Project, migration_id: str) -> list[Path]:
    folder = project.migrations_dir
    if project.layout == "dbmate":
        path = folder / f"{migration_id}.sql"
        header = ROLLBACK_HEADER.format(id=migration_id)
        path.write_text(
            f"-- migrate:up\n-- Migration {migration_id}\n\n\n-- migrate:down\n{header}",
            encoding="utf-8",
        )
        return [path]
    rollback = _rollback_path(project, migration_id)
    if project.layout == "prisma":
        forward = folder / migration_id / "migration.sql"
    elif project.layout == "flyway":
        forward = folder / f"{migration_id}.sql"
    else:
        forward = folder / f"{migration_id}.up.sql"
    forward.parent.mkdir(parents=True, exist_ok=True)
    rollback.parent.mkdir(parents=True, exist_ok=True)
    forward.write_text(
        FORWARD_HEADER.format(id=migration_id, rollback=project.rel(rollback)), encoding="utf-8"
    )
    rollback.write_text(ROLLBACK_HEADER.format(id=migration_id), encoding="utf-8")
    return [forward, rollback]


def _rollback_only(project: Project, migration: Migration) -> NewResult:
    if migration.down is not None:
        raise UsageError(
            f"migration {migration.id} already has a rollback: {migration.down.display}"
        )
    if project.layout == "dbmate":
        raise UsageError(
            f"{migration.up.display} has no '-- migrate:down' section: add one to that file"
        )
    rollback = _rollback_path(project, migration.id)
    rollback.parent.mkdir(parents=True, exist_ok=True)
    rollback.write_text(ROLLBACK_HEADER.format(id=migration.id), encoding="utf-8")
    return NewResult(migration_id=migration.id, created=[rollback])
