"""``backup``, ``backups`` and ``restore``: take, list and bring back verified backups."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from backout import api
from backout.api.action_documents import backup_fields, restore_fields
from backout.cli import main, render
from backout.cli.common import (
    ActionDocument,
    ask,
    build_config,
    handle_errors,
    lock_wait_option,
    project_options,
)
from backout.cli.fleet_options import fleet_options
from backout.cli.render import when
from backout.model.documents import iso
from backout.model.errors import Declined

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

    from backout.backup.catalog import BackupRecord
    from backout.backup.restore import RestorePlan, RestoreResult


class _Progress:
    """Progress of a backup or restore: a spinner on a terminal, ``… step`` lines otherwise."""

    def __init__(self) -> None:
        self.console: Console = render.console(err=True)
        self.status: Status | None = None

    def __call__(self, message: str) -> None:
        if not self.console.is_terminal:
            click.echo(f"… {message}", err=True)
            return
        if self.status is None:
            self.status = self.console.status(message)
            self.status.start()
        else:
            self.status.update(message)

    def pause(self) -> None:
        """Stop the spinner (before a prompt, and at the end)."""
        if self.status is not None:
            self.status.stop()
            self.status = None


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _tables(record: BackupRecord, *, limit: int = 3) -> str:
    if record.kind == "full":
        return f"all ({len(record.tables)})"
    names = [t.rpartition(".")[2] if "." in t else t for t in record.tables]
    shown = ", ".join(names[:limit])
    more = f", +{len(names) - limit}" if len(names) > limit else ""
    return f"{len(names)}: {shown}{more}" if names else "0"


def _describe(record: BackupRecord) -> str:
    return (
        f"{record.id} ({record.kind}, {_size(record.size)}, {record.total_rows} rows in "
        f"{len(record.tables)} table(s), taken {when(record.created_at)} UTC, {record.tool}, "
        f"sha256 {record.sha256[:12]}…)"
    )


@main.command()
@click.option(
    "--full",
    is_flag=True,
    help="Back up every table's rows (default: what a rollback of the latest migration would "
    "back up, falling back to full).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON (docs/json.md).")
@project_options
@lock_wait_option
@handle_errors
@fleet_options
def backup(
    full: bool, as_json: bool, url: str | None, project: Path | None, config_file: Path | None
) -> None:
    """Take a verified backup now: the one a rollback would take, or everything with --full.

    The backup goes into the backup folder (backup_dir, default .backout/backups) and its
    catalog; `backout backups` lists them and `backout restore` brings one back.
    """
    config = build_config(url=url, project=project, config_file=config_file)
    progress = _Progress()
    with ActionDocument("backup", as_json) as document:
        try:
            progress("backing up")
            record = api.backup(config, full=full, progress=progress)
        finally:
            progress.pause()
    if as_json:
        document.emit("backed_up", backup_fields(record))
        return
    out = render.console()
    out.print(f"Backup {_describe(record)}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"File: {config.backups / record.file}", markup=False, soft_wrap=True)
    out.print(f"Restore it with: backout restore {record.id}", markup=False, soft_wrap=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON.")
@project_options
@handle_errors
def backups(as_json: bool, url: str | None, project: Path | None, config_file: Path | None) -> None:
    """List the backup catalog, oldest first: id, kind, when, size, tables, sha256, reason."""
    from rich.text import Text

    config = build_config(url=url, project=project, config_file=config_file)
    records = api.backups(config)
    strays = api.uncatalogued_backup_files(config)
    if as_json:
        render.echo_json(
            {
                "format": 1,
                "folder": str(config.backups),
                "backups": [{**r.to_dict(), "created_at": iso(r.created_at)} for r in records],
                "uncatalogued": [{"file": p.name, "size": _file_size(p)} for p in strays],
            }
        )
        return
    out = render.console()
    if not records:
        out.print(f"No backups yet in {config.backups}.", markup=False, soft_wrap=True)
        _warn_strays(strays)
        return
    columns = [
        render.Column("id"),
        render.Column("kind"),
        render.Column("created (UTC)"),
        render.Column("size"),
        render.Column("tables", wraps=True),
        render.Column("sha256"),
        render.Column("reason", wraps=True),
    ]
    rows = [
        [
            record.id,
            record.kind,
            render.when(record.created_at),
            _size(record.size),
            Text(_tables(record)),
            record.sha256[:12],
            Text(record.reason),
        ]
        for record in records
    ]
    render.fitted_table(out, columns, rows)
    out.print(f"{len(records)} backup(s) in {config.backups}.", markup=False, soft_wrap=True)
    _warn_strays(strays)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # deleted since it was listed


def _warn_strays(strays: list[Path]) -> None:
    """Files no catalogued backup owns: say what they are and that they may go."""
    if not strays:
        return
    total = sum(_file_size(p) for p in strays)
    names = ", ".join(p.name for p in strays[:5]) + (", ..." if len(strays) > 5 else "")
    click.echo(
        f"warning: {len(strays)} file(s) in the backup folder are in no catalogued backup "
        f"({_size(total)}): {names}. A backup interrupted before it was verified leaves its "
        "partial file (restore never uses one); delete them once no backout run is taking a "
        "backup.",
        err=True,
    )


def _show_plan(plan: RestorePlan, *, err: bool = False) -> None:
    out = render.console(err=err)
    record = plan.backup
    out.print(
        f"Restore backup {record.id} ({record.kind}, taken {render.when(record.created_at)} UTC, "
        f"reason: {record.reason}) over {plan.target}.",
        markup=False,
        soft_wrap=True,
    )
    out.print(
        f"Replaces the rows of {len(plan.replaces)} table(s): {', '.join(plan.replaces) or '-'}",
        markup=False,
        soft_wrap=True,
    )
    if plan.drops:
        out.print(
            f"Drops {len(plan.drops)} table(s) the backup does not have: {', '.join(plan.drops)}",
            markup=False,
            soft_wrap=True,
        )
    if plan.created_empty:
        out.print(
            "Re-creates without rows (the backup does not hold them): "
            + ", ".join(plan.created_empty),
            markup=False,
            soft_wrap=True,
        )
    if plan.schema_changes:
        out.print(
            f"Changes the schema back to the backup's ({len(plan.schema_changes)} change(s)):",
            markup=False,
            soft_wrap=True,
        )
        for change in plan.schema_changes[:20]:
            out.print(f"  - {change}", markup=False, soft_wrap=True)
        if len(plan.schema_changes) > 20:
            out.print(
                f"  ... and {len(plan.schema_changes) - 20} more", markup=False, soft_wrap=True
            )
    if plan.pre_restore_backup:
        out.print(f"First: {plan.pre_restore_backup}.", markup=False, soft_wrap=True)


def _show_result(result: RestoreResult) -> None:
    out = render.console()
    rows = sum(result.row_counts.values())
    out.print(
        f"Restored {result.backup.id} into {result.target} in {result.duration_s:.1f}s: "
        f"schema fingerprint matches, {rows} rows in {len(result.row_counts)} table(s).",
        markup=False,
        soft_wrap=True,
    )
    if result.pre_restore is not None:
        out.print(
            f"The state before it is in backup {result.pre_restore.id}: "
            f"`backout restore {result.pre_restore.id}` goes back to it.",
            markup=False,
            soft_wrap=True,
        )


@main.command()
@click.argument("backup_ref", metavar="BACKUP", required=False)
@click.option(
    "--resume",
    is_flag=True,
    help="Finish a restore that stopped part-way (MySQL/MariaDB; `backout status` says so): "
    "restores the same backup again.",
)
@click.option(
    "--into",
    metavar="URL",
    help="Restore into this new, empty database (created if possible) instead, to inspect it.",
)
@click.option(
    "--yes", "-y", is_flag=True, help="Do not ask for confirmation (needed without a terminal)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON (docs/json.md).")
@project_options
@lock_wait_option
@handle_errors
def restore(
    backup_ref: str | None,
    resume: bool,
    into: str | None,
    yes: bool,
    as_json: bool,
    url: str | None,
    project: Path | None,
    config_file: Path | None,
) -> None:
    """Restore BACKUP (an id, a unique id prefix, or `latest`) over the current database.

    The backup is verified first; then a full backup of the current state is taken, and the
    restore runs in one transaction that commits only if the schema and row counts come out
    exactly as recorded (on MySQL/MariaDB, whose DDL commits at once, it is journaled
    instead: one that stops part-way is reported by `backout status` and finished by
    `backout restore --resume`). With --into, the backup goes into a new database instead and
    the current one is not touched.
    """
    config = build_config(url=url, project=project, config_file=config_file)
    progress = _Progress()

    def confirm(plan: RestorePlan) -> bool:
        progress.pause()
        _show_plan(plan, err=as_json)  # with --json, stdout holds the document only
        if yes:
            return True
        if not sys.stdin.isatty():
            raise Declined("restore replaces data: pass --yes to confirm when not on a terminal")
        return ask("Restore it?", err=as_json)

    if resume == (backup_ref is not None):
        raise click.UsageError("name the BACKUP to restore, or pass --resume (not both)")
    with ActionDocument("restore", as_json) as document:
        try:
            result = api.restore(
                config,
                backup_ref,
                into=into,
                confirm=None if into is not None else confirm,
                progress=progress,
                resume=resume,
            )
        finally:
            progress.pause()
    if as_json:
        document.emit("restored", restore_fields(result))
        return
    _show_result(result)
