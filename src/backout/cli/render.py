"""Human output: rich for most commands; `status` prints with click alone (see :func:`say`)
to start fast. Respects NO_COLOR; SQL and paths are printed without markup."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from backout.run.journal import describe_unfinished_restore, finish_restore_hint

if TYPE_CHECKING:
    from rich.console import Console

    from backout.api import StatusResult
    from backout.migrate.residue import Residue
    from backout.rollback.recovery import RecoveryPlan, RecoveryResult
    from backout.run.status import MigrationStatus, StatusReport


#: the width of output that goes to no terminal and no COLUMNS: wide enough never to fold
UNLIMITED_WIDTH = 10_000


def console(*, err: bool = False) -> Console:
    """A rich console on stdout (or stderr).

    On a terminal, its width, and prose wraps at words. Without one, ``COLUMNS`` (tables fit
    it, or turn vertical: see :func:`fitted_table`) and text is never wrapped, so no value
    (an id, a URL, a path) is cut into pieces a script would have to glue back."""
    from rich.console import Console

    stream = sys.stderr if err else sys.stdout
    if stream.isatty():
        return _quiet_pipe(Console(file=stream, highlight=False, soft_wrap=False))
    return _quiet_pipe(Console(file=stream, width=_pipe_width(), highlight=False, soft_wrap=True))


def _quiet_pipe(out: Console) -> Console:
    """The console with a closed pipe raised to the CLI (see cli.common), not exit 1."""
    out.on_broken_pipe = _broken_pipe  # type: ignore[method-assign]
    return out


@dataclass(frozen=True)
class Column:
    """A column of :func:`fitted_table`."""

    header: str
    #: False: the value must be read (and typed) whole: an id, a risk, a count. True: it may
    #: wrap on a terminal (a path, a list of tables, a reason)
    wraps: bool = False


#: a wrapping column is not squeezed below this many characters
MIN_WRAPPED = 16


def fitted_table(out: Console, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
    """A table that never truncates a value.

    It is printed as a table when every value fits the width whole; on a terminal, also when
    only the wrapping columns (paths, reasons) have to wrap. Otherwise (a narrow terminal, or
    ``COLUMNS`` too small for the values without a terminal) it turns vertical: one block per
    row, ``header: value`` per line, so ids, risks and counts are still whole."""
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    def text(cell: Any) -> str:
        return cell.plain if isinstance(cell, Text) else str(cell)

    widths = [
        max([cell_len(c.header), *(cell_len(text(r[i])) for r in rows)])
        for i, c in enumerate(columns)
    ]
    gaps = 2 * (len(columns) - 1)
    whole = sum(widths) + gaps
    squeezed = gaps + sum(
        min(w, MIN_WRAPPED) if c.wraps else w for c, w in zip(columns, widths, strict=True)
    )
    if whole <= out.width or (out.is_terminal and squeezed <= out.width):
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column, width in zip(columns, widths, strict=True):
            if column.wraps:
                table.add_column(column.header, overflow="fold", min_width=min(width, MIN_WRAPPED))
            else:
                table.add_column(column.header, no_wrap=True, min_width=width)
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    label = max(cell_len(c.header) for c in columns)
    for row in rows:
        for column, cell in zip(columns, row, strict=True):
            out.print(
                Text.assemble((column.header.rjust(label), "bold"), "  ", cell),
                soft_wrap=True,
            )
        out.print()


def fitted_grid(
    columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *, err: bool = False
) -> None:
    """:func:`fitted_table` without rich where no terminal reads the output (a pipe, a file, a
    CI log), which is where its layout is simple: the table when every value fits ``COLUMNS``
    whole (no limit without it), else one block per row. On a terminal, :func:`fitted_table`
    itself (wrapping columns need rich's measuring)."""
    stream = sys.stderr if err else sys.stdout
    if stream.isatty():
        from rich.text import Text  # rich is heavy: loaded only to draw on a terminal

        cells = [[Text(text, style=style) for text, style in row] for row in rows]
        fitted_table(console(err=err), columns, cells)
        return
    widths = [
        max([len(c.header), *(len(row[i][0]) for row in rows)]) for i, c in enumerate(columns)
    ]
    if sum(widths) + 2 * (len(columns) - 1) <= _pipe_width():
        # as rich draws it: every cell padded to its column's width, two spaces between
        for line in [[c.header for c in columns], *([text for text, _ in row] for row in rows)]:
            click.echo("  ".join(t.ljust(w) for t, w in zip(line, widths, strict=True)), err=err)
        return
    label = max(len(c.header) for c in columns)
    for row in rows:
        for column, (text, _) in zip(columns, row, strict=True):
            click.echo(f"{column.header.rjust(label)}  {text}", err=err)
        click.echo("", err=err)


def _pipe_width() -> int:
    """The width of output that goes to no terminal: ``COLUMNS``, else unlimited."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else UNLIMITED_WIDTH


def _broken_pipe() -> None:
    """rich would exit 1 on a closed pipe; the CLI ends quietly instead (see cli.common)."""
    raise BrokenPipeError


def echo_json(document: Any) -> None:
    """Print a JSON document (sorted keys, 2-space indent)."""
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


def when(value: dt.datetime | None) -> str:
    """A timestamp as ``2025-07-20 10:00:01`` UTC, or empty."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


Cell = tuple[str, str]


def _styled(text: str, style: str) -> str:
    if not style or os.environ.get("NO_COLOR"):
        return text
    words = style.split()
    colour = next((w for w in words if w not in {"bold", "dim"}), None)
    return click.style(text, fg=colour, bold="bold" in words, dim="dim" in words)


def grid(headers: list[str], rows: list[list[Cell]]) -> None:
    """An aligned plain-text table. rich's Table measures every cell, which takes ~1 s for a
    thousand rows; long listings (status, history) use this instead. Colour only on a
    terminal (click strips it otherwise) and never with NO_COLOR."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, (text, _) in enumerate(row):
            widths[i] = max(widths[i], len(text))
    last = len(headers) - 1
    click.echo(
        _styled(
            "  ".join(h.ljust(widths[i]) if i < last else h for i, h in enumerate(headers)), "bold"
        ).rstrip()
    )
    for row in rows:
        parts = []
        for i, (text, style) in enumerate(row):
            padded = text.ljust(widths[i]) if i < last else text
            parts.append(_styled(padded, style) if text else padded)
        click.echo("  ".join(parts).rstrip())


#: a piece of a line: plain text, or (text, style) with a style as :func:`_styled` takes it
Part = str | tuple[str, str]


def say(*parts: Part, wrap: bool = True, err: bool = False) -> None:
    """One line of prose on stdout (``err``: stderr) without rich (whose import costs as much
    as the rest of ``status``), as :func:`console` prints it: styled on a terminal (never with
    NO_COLOR), wrapped at words to the terminal's width unless ``wrap`` is False (a value that
    must not be cut), and never wrapped without a terminal."""
    spans = [(part, "") if isinstance(part, str) else part for part in parts]
    plain = "".join(text for text, _ in spans)
    stream = sys.stderr if err else sys.stdout
    width = shutil.get_terminal_size().columns if wrap and stream.isatty() else 0
    for start, end in _wrapped(plain, width):
        pieces, at = [], 0
        for text, style in spans:
            first, last = max(start, at), min(end, at + len(text))
            if first < last:
                pieces.append(_styled(plain[first:last], style))
            at += len(text)
        click.echo("".join(pieces), err=err)


def _wrapped(text: str, width: int) -> list[tuple[int, int]]:
    """(start, end) of each line of ``text`` wrapped at spaces to ``width`` (0: its own
    lines only); a word longer than the width is folded."""
    if width <= 0:
        return [(0, len(text))]
    lines: list[tuple[int, int]] = []
    start = 0
    for newline in [*(i for i, c in enumerate(text) if c == "\n"), len(text)]:
        while newline - start > width:
            cut = text.rfind(" ", start + 1, start + width + 1)
            if cut == -1:
                lines.append((start, start + width))
                start += width
            else:
                lines.append((start, cut))
                start = cut + 1
        lines.append((start, newline))
        start = newline + 1
    return lines


_STATE_STYLE = {
    "applied": "green",
    "pending": "yellow",
    "failed": "bold red",
    "rolled_back": "cyan",
    "applying": "bold yellow",
}


def status(result: StatusResult) -> None:
    """The ``status`` table and the notes below it (without rich: see :func:`say`)."""
    ws = result.workspace
    report = result.report
    say(
        ("backout status", "bold"),
        f"  {ws.project.layout} layout, {ws.project.rel(ws.project.migrations_dir)}  ",
        (ws.url.masked(), "dim"),
        f" (from {ws.config.url_source}"
        + (f"; file {ws.url.path}" if ws.url.path is not None else "")
        + ")",
    )
    if not result.database_exists:
        say(("The database file does not exist yet: everything is pending.", "yellow"))
    rows: list[list[Cell]] = []
    for entry in report.entries:
        migration = entry.migration
        flags = []
        if entry.edited:
            flags.append("edited")
        if entry.out_of_order:
            flags.append("out of order")
        if entry.missing_from_disk:
            flags.append("no file")
        run = entry.interrupted
        if run is not None:
            flags.insert(
                0,
                f"partly {run.verb}: {len(run.applied)} of {run.total}"
                + (", 1 unknown" if run.uncertain is not None else ""),
            )
        state = entry.state.value.replace("_", " ") + (f" ({', '.join(flags)})" if flags else "")
        style = "bold red" if flags else _STATE_STYLE[entry.state.value]
        if entry.recorded_by:
            # the host tool did it on its own: no checksum or time known, never guessed
            state += f" by {entry.recorded_by}"
        if migration is None:
            rollback, risk = ("—", "dim"), ("", "")
        elif migration.down is None:
            rollback, risk = ("none", "bold red"), ("", "")
        else:
            declared = migration.down.directives.risk
            rollback = (
                (migration.down.display + " (broken)", "bold red")
                if migration.down.display in result.broken
                else (migration.down.display, "")
            )
            risk = (declared.name, "") if declared is not None else ("undeclared", "bold red")
        partials = ", ".join(name for name, _ in migration.partials) if migration else ""
        rows.append(
            [
                (entry.id, ""),
                (state, style),
                (when(entry.applied_at), ""),
                rollback,
                risk,
                (partials, ""),
            ]
        )
    grid(["migration", "state", "applied at (UTC)", "rollback", "risk", "partials"], rows)
    _status_notes(result)


def _status_notes(result: StatusResult) -> None:
    report = result.report
    say(_status_counts(report) + ".")
    for run in report.unfinished_restores:
        say(("half-restored: ", "bold red"), describe_unfinished_restore(run) + ".")
        say(
            f"  The database is neither as it was nor as the backup; the migration states "
            f"above may be wrong until it is finished: {finish_restore_hint(run)}."
        )
    for entry in report.interrupted:
        _interrupted_note(entry)
    for note in result.notes:
        say(("note: ", "bold"), note)
    for entry in report.failed:
        if entry.interrupted is None:  # else said above, with the journal's details
            _failed_note(result, entry)
    for entry in report.applying:
        # the holder is one value: never cut into lines
        say(("being applied: ", "bold yellow"), f"{entry.id}: {entry.applying_by}.", wrap=False)
    for error in result.broken.values():
        say(("broken rollback: ", "bold red"), error, " (`rollback` refuses it)", wrap=False)
    _file_notes(report)
    for repeat in result.repeatables:
        say(("repeatable: ", "bold"), f"{repeat.script.display}: {_REPEATABLE[repeat.state]}")


_REPEATABLE = {
    "pending": "pending (never run: `up` runs it after the versioned migrations)",
    "outdated": "outdated (changed since its last run: `up` runs it again)",
    "up to date": "up to date",
    "failed": "failed (its last run failed: settle it and delete its failed row, as `flyway "
    "repair` does; `up` refuses until then)",
}


def _status_counts(report: StatusReport) -> str:
    """``3 applied, 1 pending, 1 without rollback``."""
    counts = [
        f"{len(report.applied)} applied",
        f"{len(report.pending)} pending",
    ]
    if report.failed:
        counts.append(f"{len(report.failed)} failed")
    if report.interrupted:
        counts.append(f"{len(report.interrupted)} stopped part-way")
    without = [e for e in report.entries if e.migration is not None and e.migration.down is None]
    if without:
        counts.append(f"{len(without)} without rollback")
    return ", ".join(counts)


def _failed_note(result: StatusResult, entry: MigrationStatus) -> None:
    """A failed migration: why, and how to settle it (what a failed apply left behind)."""
    first = (entry.failure or "").strip().splitlines()
    reason = next((line for line in first if line and not line.startswith("Database")), "")
    say(("failed: ", "bold red"), f"{entry.id}: {reason}")
    if entry.failed_steps:
        say(
            f"  It ran with transaction off: its first {entry.failed_steps} statement(s) "
            "are applied and remain. Either finish the rest by hand, then "
            f"`backout resolve {entry.id} --applied`; or undo those by hand (or restore a "
            f"backup), then `backout resolve {entry.id} --rolled-back` and `backout up`."
        )
    else:
        for line in _residue_lines(entry.id, result.residues.get(entry.id)):
            say("  " + line)


def _file_notes(report: StatusReport) -> None:
    """Migration files that differ from the history: edited, missing, out of order."""
    for entry in report.edited:
        assert entry.migration is not None
        say(
            ("edited:", "bold red"),
            f" {entry.migration.up.display} changed after it was applied "
            "(checksum differs); `up` refuses to continue unless --allow-edited.",
        )
    for entry in report.missing:
        say(
            ("missing:", "bold red"),
            f" {entry.id} is in history but not on disk; "
            "`up` refuses to continue unless --allow-missing.",
        )
    if any(e.out_of_order for e in report.entries):
        say(
            ("out of order:", "yellow"),
            " some pending migrations are older than applied ones; "
            "`up` applies them in file order.",
        )


def _residue_lines(migration: str, residue: Residue | None) -> list[str]:
    """What remains of a failed migration, and the way out, as lines for ``status``."""
    resolve = f"`backout resolve {migration} --rolled-back` and `backout up`"
    if residue is not None and residue.rolled_back_by_backout:
        return [
            "backout ran it in one transaction and rolled that back: no change of it remains. "
            f"Fix the script, then {resolve}."
        ]
    if residue is None or residue.unknown_reason or not residue.statements:
        why = f" ({residue.unknown_reason})" if residue and residue.unknown_reason else ""
        return [
            "backout did not record this failure, so it cannot know which of its statements "
            f"remain applied{why}. Compare the database with the migration (`backout check` "
            f"shows drift); undo what remains, then {resolve}."
        ]
    if residue.nothing_remains:
        return [
            f"None of the schema changes of {residue.file} is in the database. Fix the "
            f"script, then {resolve}."
        ]
    lines = [
        f"backout did not record this failure (its writer may leave earlier statements "
        f"applied); {residue.file} compared with the database now:"
    ]
    for statement in residue.statements:
        seen = "; ".join(
            [f"{x} present" for x in statement.present] + [f"{x} absent" for x in statement.absent]
        )
        verdict = (
            "cannot tell (the schema now does not show whether it ran: check by hand)"
            if statement.verdict == "unknown"
            else statement.verdict + (f" ({seen})" if seen else "")
        )
        lines.append(f"  line {statement.line}: {statement.excerpt}: {verdict}")
    lines.append(
        "Undo what is applied (or finish the rest and `backout resolve "
        f"{migration} --applied`), then {resolve}."
    )
    return lines


def _interrupted_note(entry: Any) -> None:
    """A journaled run that stopped part-way: where, and the two ways out."""
    run = entry.interrupted
    label = f"partly {run.verb}: "
    say((label, "bold red"), f"{entry.id}: {run.describe()}.")
    if run.next_index <= run.total:
        resume = (
            f"`backout rollback --resume` runs statements {run.next_index}-{run.total}"
            if run.next_index < run.total
            else f"`backout rollback --resume` runs statement {run.total}"
        )
    else:
        resume = "`backout rollback --resume` only records it as finished"
    if run.applied:
        undo = (
            f"`backout rollback --undo-partial` reverses statement(s) "
            f"{', '.join(str(i) for i in run.applied)}"
        )
    else:
        undo = "`backout rollback --undo-partial` closes the run (nothing to reverse)"
    backup = f" (backup taken before it: {run.backup})" if run.backup else ""
    say(
        f"  The statements that completed stay applied. Fix the cause, then {resume} "
        f"(run {run.run_id[:8]}); or {undo}{backup}."
    )


def history(events: list[Any]) -> None:
    """The audit log as a table."""

    out = console()
    if not events:
        out.print("No history yet.")
        return
    rows: list[list[Cell]] = [
        [
            (str(event.id), ""),
            (when(event.started_at), ""),
            (event.event, ""),
            (event.migration or "", ""),
            (event.outcome, "green" if event.outcome == "ok" else "bold red"),
            (str(event.duration_ms), ""),
            (f"{event.actor.user}@{event.actor.host}", ""),
            (event.backup or "", ""),
            ((event.error or "").replace("\n", " "), ""),
        ]
        for event in events
    ]
    grid(["#", "when (UTC)", "event", "migration", "outcome", "ms", "who", "backup", "error"], rows)


def recovery_plan(plan: RecoveryPlan) -> None:
    """What ``--resume`` / ``--undo-partial`` will do, before confirmation."""
    from rich.text import Text

    out = console()
    run = plan.run
    verb = "Resume" if plan.action == "resume" else "Undo"
    out.print(
        Text.assemble(
            (f"{verb} the {run.direction} of {plan.migration}", "bold"),
            " on ",
            (plan.database, "dim"),
            f" (run {run.run_id[:8]}, started {when(run.started_at)} UTC)",
        )
    )
    out.print(f"Where it stopped: {run.describe()}.", markup=False)
    for note in plan.notes:
        out.print(f"note: {note}", markup=False)
    if plan.action == "resume":
        _resume_path(out, plan)
    elif plan.path == "inverse":
        _inverse_path(out, plan)
    else:
        out.print(
            f"Path: restore backup {run.backup}, taken before the run, because these "
            "statements have no inverse:",
            markup=False,
        )
        for inverse in plan.inverses:
            if not inverse.derivable:
                out.print(
                    f"  {inverse.statement.index}. line {inverse.statement.line}: {inverse.reason}",
                    markup=False,
                )
    out.print(f"Under the run lock ({plan.lock}).", markup=False)


def _resume_path(out: Console, plan: RecoveryPlan) -> None:
    """The statements ``--resume`` runs, and what it records then."""
    if not plan.statements:
        out.print("Every statement ran: only the history is recorded.", markup=False)
        return
    first, last = plan.statements[0], plan.statements[-1]
    then = {
        "up": "records the migration as applied",
        "rollback": "records the migration as rolled back",
    }.get(plan.run.direction, "records the partial rollback")
    out.print(
        f"Runs statements {first.index}-{last.index} of {plan.script.display} "
        f"(lines {first.line}-{last.line}), each journaled as it completes, then "
        f"{then}:",
        markup=False,
    )
    for statement in plan.statements:
        out.print(
            f"  {statement.index}. line {statement.line}: {statement.excerpt(90)}",
            markup=False,
        )


def _inverse_path(out: Console, plan: RecoveryPlan) -> None:
    """The inverses ``--undo-partial`` runs, newest first, and the migration's state then."""
    out.print(
        "Path: the inverse of each statement that took effect, newest first "
        "(derived from the statements themselves):",
        markup=False,
    )
    for inverse in plan.inverses:
        statement = inverse.statement
        sql = "; ".join(inverse.sql) or "(nothing to undo)"
        out.print(
            f"  {statement.index}. line {statement.line}: {statement.excerpt(50)}  ->  {sql}",
            markup=False,
        )
    if not plan.inverses:
        out.print("  (no statement took effect: the run is only closed)", markup=False)
    if plan.run.direction == "up":
        out.print("Then the failed apply is closed: the migration is pending again.")
    else:
        out.print("The migration stays applied, as before the run.", markup=False)


def recovery_outcome(result: RecoveryResult) -> None:
    """After ``--resume`` / ``--undo-partial``."""
    out = console()
    plan = result.plan
    run = plan.run
    if plan.action == "resume":
        done = {"up": "applied", "rollback": "rolled back"}.get(run.direction, "done")
        out.print(
            f"Resumed run {run.run_id[:8]}: {result.statements} statement(s) in "
            f"{result.duration_s:.2f} s; {plan.migration} is {done}.",
            markup=False,
        )
        if result.remaining:
            out.print(
                f"The interrupted rollback also planned {', '.join(result.remaining)}: run "
                f"`backout rollback --to {run.details.get('target') or '...'}` for them.",
                markup=False,
            )
    elif result.restored:
        out.print(
            f"Undid run {run.run_id[:8]} by restoring backup {result.restored} (taken before "
            f"it) in {result.duration_s:.2f} s (path: backup).",
            markup=False,
        )
    else:
        state = "pending again" if run.direction == "up" else "applied, as before the run"
        out.print(
            f"Undid run {run.run_id[:8]}: {result.statements} inverse statement(s) in "
            f"{result.duration_s:.2f} s (path: inverses). {plan.migration} is {state}.",
            markup=False,
        )
