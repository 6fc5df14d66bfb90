"""``history``: the audit log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from backout import api
from backout.api.documents import history_json
from backout.cli import main, render
from backout.cli.common import build_config, handle_errors, project_options
from backout.model.errors import UsageError


def _since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since: expected a date or ISO date-time, got {value!r}") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON (docs/json.md).")
@click.option(
    "--since", metavar="DATE", help="Only events from this date/time (UTC unless a zone is given)."
)
@click.option("--migration", metavar="ID", help="Only events about this migration.")
@project_options
@handle_errors
def history(
    as_json: bool,
    since: str | None,
    migration: str | None,
    url: str | None,
    project: Path | None,
    config_file: Path | None,
) -> None:
    """Show the append-only audit log: applies, rollbacks, restores, resolves, backups."""
    config = build_config(url=url, project=project, config_file=config_file)
    result = api.history(config, since=_since(since), migration=migration)
    if as_json:
        render.echo_json(history_json(result.events))
        return
    render.history(result.events)
