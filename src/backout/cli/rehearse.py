"""``backout check``, ``backout test`` and ``backout generate`` (docs/commands/check.md,
test.md, generate.md): look for damage, rehearse rollbacks, draft missing ones."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from backout import api
from backout.analysis.checks import check_json
from backout.cli import main, render
from backout.cli.common import (
    build_config,
    fail,
    handle_errors,
    project_options,
)
from backout.cli.fleet_options import fleet_options
from backout.rehearsal.report import RehearsalEvent, rehearsal_json

if TYPE_CHECKING:
    from backout.analysis.checks import CheckReport
    from backout.generate.draft import GeneratedRollback
    from backout.rehearsal.report import MigrationRehearsal, Progress, RehearsalReport


_KIND_STYLE = {
    "orphan": "bold red",
    "suspected_orphan": "yellow",
    "leftover": "bold red",
    "drift": "bold red",
    "verify": "bold red",
}


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON.")
@click.option(
    "--no-drift",
    is_flag=True,
    help="Skip leftovers and drift (they replay the applied migrations on a scratch database).",
)
@click.option(
    "--ignore-column-order", is_flag=True, help="Do not report columns that are only reordered."
)
@project_options
@handle_errors
@fleet_options
def check(
    as_json: bool,
    no_drift: bool,
    ignore_column_order: bool,
    url: str | None,
    project: Path | None,
    config_file: Path | None,
) -> None:
    """Look for orphaned rows, leftovers, drift and failing verify queries.

    Orphans: rows whose foreign key points nowhere (NOT VALID keys on PostgreSQL, every key on
    SQLite, keys a rollback dropped), and columns named like references with no foreign key
    (suspected). Leftovers and drift: the live schema against the one the applied migrations
    give on a scratch database. Verify: the verify queries of the rollbacks that were run.
    Read-only. Exits 1 when something is found.
    """
    config = build_config(url=url, project=project, config_file=config_file)
    report = api.check(config, drift=not no_drift, ignore_column_order=ignore_column_order)
    if as_json:
        render.echo_json(check_json(report))
    else:
        _render_check(report)
    if not report.ok:
        fail(
            f"check found {len(report.problems)} problem(s); the first: "
            f"{report.problems[0].message}",
            None,
            1,
        )


def _render_check(report: CheckReport) -> None:
    click.echo(f"backout check  {report.database}")
    if report.problems:
        rows: list[list[render.Cell]] = []
        for problem in report.problems:
            rows.append(
                [
                    (problem.kind.replace("_", " "), _KIND_STYLE.get(problem.kind, "")),
                    (problem.message, ""),
                ]
            )
            rows += [[("", ""), (f"  e.g. {sample}", "dim")] for sample in problem.samples]
        render.grid(["found", "what"], rows)
    for note in report.notes:
        click.echo(f"note: {note}")
    checked = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in report.checked.items())
    if report.ok:
        click.echo(f"No orphans, leftovers, drift or failing verify queries ({checked}).")
    else:
        kinds: dict[str, int] = {}
        for problem in report.problems:
            kinds[problem.kind] = kinds.get(problem.kind, 0) + 1
        shown = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in kinds.items())
        click.echo(f"{len(report.problems)} problem(s): {shown} (checked {checked}).")


@main.command()
@click.argument("ids", nargs=-1, metavar="[ID ...]")
@click.option(
    "--all",
    "all_",
    is_flag=True,
    help="Every migration in order on an empty scratch database (CI; no source database).",
)
@click.option(
    "--from",
    "from_url",
    metavar="URL",
    help="Copy this database (staging, a replica) instead of the configured one.",
)
@click.option(
    "--with-data",
    is_flag=True,
    help="With --all: fill each empty table with synthetic rows, so data checks see rows.",
)
@click.option(
    "--strict-column-order",
    is_flag=True,
    help="Fail when columns only come back in another order (by default that is a note).",
)
@click.option(
    "--ignore-column-order",
    is_flag=True,
    hidden=True,
    help="The default now: kept so existing scripts still run.",
)
@click.option("--no-smoke", is_flag=True, help="Do not run the smoke hook on the copy.")
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON.")
@project_options
@handle_errors
@fleet_options
def test(
    ids: tuple[str, ...],
    all_: bool,
    from_url: str | None,
    with_data: bool,
    strict_column_order: bool,
    ignore_column_order: bool,
    no_smoke: bool,
    as_json: bool,
    url: str | None,
    project: Path | None,
    config_file: Path | None,
) -> None:
    """Rehearse rollbacks on a throwaway copy of the database, with its data.

    For each migration: apply it, roll it back through the same code as `backout rollback`,
    compare schema (catalog and pg_dump), rows of untouched tables and orphans with before,
    apply it again, run the smoke hook against the copy. Without ID: the pending migrations,
    or else the newest applied one. The copy is always dropped. Exits 1 when a rehearsal fails.
    """
    config = build_config(url=url, project=project, config_file=config_file)
    with _progress(enabled=not as_json and sys.stderr.isatty()) as progress:
        report = api.test(
            config,
            ids,
            all_=all_,
            from_url=from_url,
            # PostgreSQL cannot put a re-added column back in place, and neither Prisma nor
            # SQL by name depends on the order: a note unless asked to be strict.
            ignore_column_order=ignore_column_order or not strict_column_order,
            with_smoke=not no_smoke,
            with_data=with_data,
            progress=progress,
        )
    if as_json:
        render.echo_json(rehearsal_json(report))
    else:
        _render_test(report)
    if not report.ok:
        failed = ", ".join(m.id for m in report.failed) or "the smoke hook"
        fail(f"rehearsal failed: {failed}", None, 1)


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar across migrations on stderr (a terminal only)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("[bold]rehearsing[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=render.console(err=True),
        transient=True,
    )
    task = bar.add_task("", total=None)

    def on_event(event: RehearsalEvent) -> None:
        if event.kind == "plan":
            bar.update(task, total=event.total)
        elif event.kind == "step":
            where = f"{event.migration}: " if event.migration else ""
            bar.update(task, description=f"{where}{event.text}")
        elif event.kind == "done":
            bar.advance(task)

    with bar:
        yield on_event


_STATUS_STYLE = {
    "passed": "green",
    "failed": "bold red",
    "no_rollback": "yellow",
    "not_run": "dim",
}


def _render_test(report: RehearsalReport) -> None:
    source = "an empty database" if report.mode == "all" else f"a copy of {report.source}"
    click.echo(f"backout test  on {source} (dropped)")
    rows: list[list[render.Cell]] = []
    for m in report.migrations:
        seconds = m.duration_s
        messages = [f.message for f in m.failures] or [f"finding: {f}" for f in m.findings]
        first = messages[0] if messages else (m.notes[0] if m.notes else "")
        more = f" (+{len(m.failures) - 1} more)" if len(m.failures) > 1 else ""
        rows.append(
            [
                (m.id, ""),
                (m.mode, ""),
                (m.status.replace("_", " "), _STATUS_STYLE.get(m.status, "")),
                (f"{seconds:.2f}", ""),
                (first + more, ""),
            ]
        )
    if rows:
        render.grid(["migration", "mode", "result", "s", "detail"], rows)
    for m in report.migrations:
        _test_details(m)
    if report.smoke is not None:
        click.echo(f"\n{report.smoke.describe()} (on the final state of the copy)")
    for note in report.notes:
        click.echo(f"note: {note}")
    counts: dict[str, int] = {}
    for m in report.migrations:
        counts[m.status] = counts.get(m.status, 0) + 1
    shown = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items()) or "nothing"
    if not report.ok:
        verdict = "Rehearsal FAILED"
    elif counts.get("passed"):
        verdict = "All rehearsals passed"
    else:
        verdict = "Nothing was rehearsed"
    click.echo(f"\n{verdict}: {shown}, in {report.duration_s:.1f} s.")


def _test_details(m: MigrationRehearsal) -> None:
    """Below the table: every failure of a migration that has several, its findings, and
    the output of its failed smoke hook."""
    if len(m.failures) > 1:
        click.echo(f"\n{m.id}:")
        for failure in m.failures:
            click.echo(f"  - {failure.message}")
    for finding in m.findings:
        click.echo(f"\nfinding ({m.id}): {finding}")
    if m.smoke is not None and not m.smoke.ok and m.smoke.output.strip():
        click.echo(f"\nsmoke hook output ({m.id}):\n{m.smoke.output.rstrip()}")


@main.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID [ID ...]")
@click.option("--force", is_flag=True, help="Overwrite an existing rollback.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the draft; write nothing.")
@project_options
@handle_errors
def generate(
    ids: tuple[str, ...],
    force: bool,
    to_stdout: bool,
    url: str | None,
    project: Path | None,
    config_file: Path | None,
) -> None:
    """Draft the rollback of ID from the schema before and after it.

    Replays the migrations up to ID on a scratch database, diffs the schema before and after
    ID, and writes SQL that drops what ID created (in foreign-key order) and re-creates what it
    dropped or changed, with a directive header (computed risk, impact, data loss, manual
    steps). The draft is tried on the scratch database; what it cannot undo is written into it
    as TODO lines. Never overwrites an existing rollback without --force. Exits 1 when a draft
    does not undo the schema change.
    """
    config = build_config(url=url, project=project, config_file=config_file)
    results = api.generate(config, ids, force=force, write=not to_stdout)
    for result in results:
        _render_generated(result, config.root, to_stdout=to_stdout)
    incomplete = [r.migration for r in results if r.error or r.residual]
    if incomplete:
        fail(
            f"the draft for {', '.join(incomplete)} does not fully undo the schema change",
            "complete its TODO lines by hand",
            1,
        )


def _render_generated(result: GeneratedRollback, root: Path, *, to_stdout: bool) -> None:
    if to_stdout:
        click.echo(result.text)
        return
    try:
        shown = result.path.relative_to(root)
    except ValueError:
        shown = result.path
    verb = "Overwrote" if result.overwrote else "Wrote"
    click.echo(
        f"{verb} {shown} ({result.statements} statement(s), computed risk {result.risk.name})."
    )
    for line in result.todo:
        click.echo(f"  TODO: {line}")
    for line in result.column_order:
        click.echo(f"  note: {line} (re-added columns come last)")
    if not result.todo:
        click.echo(f"  Review it, then rehearse it with data: backout test {result.migration}")
