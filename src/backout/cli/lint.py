"""``backout lint``: static checks over the migration folder (docs/commands/lint.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from backout import api
from backout.cli import main, render
from backout.cli.common import build_config, fail, handle_errors, project_options
from backout.lint.linter import lint_json
from backout.model.errors import UsageError

if TYPE_CHECKING:
    from backout.lint.linter import LintReport


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON.")
@click.option("--offline", is_flag=True, help="Do not read the applied state from the database.")
@click.option(
    "--check-database",
    is_flag=True,
    help="Read the applied state even with the default database URL.",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="RULE[:MIGRATION]",
    help="Skip a rule everywhere, or for one migration (repeatable): BO101:20240101_init.",
)
@click.option("--no-squawk", is_flag=True, help="Do not run squawk even when it is installed.")
@click.option(
    "--squawk-details",
    is_flag=True,
    help="List every squawk finding (default: one line per squawk rule, after backout's own).",
)
@project_options
@handle_errors
def lint(
    paths: tuple[Path, ...],
    as_json: bool,
    offline: bool,
    check_database: bool,
    ignore: tuple[str, ...],
    no_squawk: bool,
    squawk_details: bool,
    url: str | None,
    project: Path | None,
    config_file: Path | None,
) -> None:
    """Check migrations and rollbacks statically: every problem, in one run.

    PATHS restrict the findings to migrations whose files are among them (pre-commit passes
    the changed files). Suppress a finding with `-- lint-ignore: ID reason` before the
    statement, or in the script's header for the whole script. Exits 1 when an error is
    found, 0 otherwise (warnings included). Rules: docs/lint/<ID>.md.
    """
    if offline and check_database:
        raise UsageError("--offline and --check-database contradict each other")
    # lint reads the database only when it can: a direct URL (directUrl) whose variable is
    # not set here or empty (a commit hook, a CI job without secrets) is passed over
    config = build_config(
        url=url, project=project, config_file=config_file, direct_url_optional=not check_database
    )
    report: LintReport = api.lint(
        config,
        paths,
        check_database=False if offline else (True if check_database else None),
        ignore=ignore,
        squawk=not no_squawk,
    )
    if as_json:
        render.echo_json(lint_json(report))
    else:
        _render(report, squawk_details=squawk_details)
    if not report.ok:
        first = report.errors[0]
        fail(f"lint found {len(report.errors)} error(s); the first: {first.message}", None, 1)


_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow"}


def _render(report: LintReport, *, squawk_details: bool = False) -> None:
    """backout's own findings in full, then squawk's: in full with ``--squawk-details``, else
    one line per squawk rule (count, first place), so they do not bury backout's own."""
    shown = report.findings if squawk_details else report.own
    if shown:
        rows: list[list[render.Cell]] = [
            [
                (finding.location or "(project)", ""),
                (finding.severity.value, _SEVERITY_STYLE[finding.severity.value]),
                (
                    finding.rule
                    if finding.name in finding.rule
                    else f"{finding.rule} {finding.name}",
                    "",
                ),
                (finding.message, ""),
            ]
            for finding in shown
        ]
        render.grid(["location", "severity", "rule", "message"], rows)
        click.echo("")
    if report.from_squawk and not squawk_details:
        _render_squawk_summary(report)
    errors, warnings = len(report.errors), len(report.warnings)
    scope = f"{report.migrations} migration(s), {report.scripts} script(s)"
    if report.findings:
        counts = f"{errors} error(s), {warnings} warning(s) in {scope}"
        if report.from_squawk:
            counts += (
                f"; {len(report.own)} from backout's rules, {len(report.from_squawk)} from squawk's"
            )
    else:
        counts = f"No problems in {scope}"
    notes = [f"{report.suppressed} suppressed"] if report.suppressed else []
    notes.append(f"database: {report.database}")
    notes.append(f"squawk: {report.squawk}")
    click.echo(f"{counts} ({'; '.join(notes)}).")
    if report.findings:
        click.echo("Each rule is explained in docs/lint/<ID>.md (squawk's at squawkhq.com/docs).")


def _render_squawk_summary(report: LintReport) -> None:
    """One row per squawk rule: its severity, how many findings, where the first one is."""
    first: dict[str, tuple[str, str]] = {}
    for finding in report.from_squawk:
        first.setdefault(finding.rule, (finding.location or "(project)", finding.severity.value))
    rows: list[list[render.Cell]] = []
    for rule, count in report.squawk_by_rule().items():
        location, severity = first[rule]
        rows.append(
            [
                (rule, ""),
                (severity, _SEVERITY_STYLE[severity]),
                (str(count), ""),
                (location + (f" (+{count - 1} more)" if count > 1 else ""), ""),
            ]
        )
    scripts = len({f.file for f in report.from_squawk})
    click.echo(
        f"squawk: {len(report.from_squawk)} finding(s) in {scripts} script(s), by rule "
        "(--squawk-details lists each):"
    )
    render.grid(["squawk rule", "severity", "count", "first at"], rows)
    click.echo("")
