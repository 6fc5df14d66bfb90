"""``--targets FILE``: one command over many databases or schemas (docs/fleet.md).

Loaded only when ``--targets`` is given (:func:`backout.cli.fleet_options.fleet_options`). Each
command's options become the api verb run on every target; this module refuses what has no
meaning across a fleet, asks once for confirmation, shows the fleet's progress on stderr, and
prints the summary (or the JSON document).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click

from backout import api
from backout.api.verbs.fleet import Done, FleetPlan, FleetProgress, FleetResult
from backout.cli import render
from backout.cli.common import ActionDocument, ask, build_config, fail
from backout.fleet.goals import AppliedUpTo, Goal, RolledBackTo
from backout.fleet.run import TargetResult
from backout.model.documents import error_json, iso
from backout.model.errors import Declined, Terminated, UsageError
from backout.model.urls import mask_url
from backout.project.config import Config
from backout.rollback.rollback import plan_refusals

#: --parallel when not given
DEFAULT_PARALLEL = 4


@dataclass(frozen=True)
class Job:
    """What a command does on one target, and whether it takes the run lock."""

    run_one: Callable[[Config], Done]
    acts: bool
    goal: Goal | None = None
    #: the question asked once before the run (None: none is asked)
    question: str | None = None
    #: read-only and lock-free: a connection may serve the next target on the same database
    reuse_connections: bool = False


def run(ctx: click.Context, options: dict[str, Any]) -> None:
    """Run the command of ``ctx`` on every target of ``--targets`` (see the module)."""
    command = ctx.command.name or ""
    params = ctx.params
    as_json = bool(params.get("as_json")) or params.get("fmt") == "json"
    with ActionDocument(command, as_json):
        config = _config(ctx, params)
        job = _job(command, params)
        parallel = int(options.get("parallel", DEFAULT_PARALLEL))
        plan = api.fleet_plan(
            config, options["targets"], acts=job.acts, goal=job.goal, parallel=parallel
        )
        _confirm(job, plan, yes=bool(params.get("yes")), as_json=as_json)
        with _progress(command, as_json=as_json) as progress, _stop_on_signal() as stop:
            result = api.fleet_run(
                plan,
                job.run_one,
                parallel=parallel,
                keep_going=bool(options.get("keep_going")),
                canary=int(options.get("canary", 0)),
                progress=progress,
                stop=stop,
                reuse_connections=job.reuse_connections,
            )
    if as_json:
        click.echo(_json(command, options, parallel, result, stop))
    else:
        _summary(command, result)
    _exit(result, stop, as_json=as_json)


def _config(ctx: click.Context, params: dict[str, Any]) -> Config:
    """The project's configuration; the URL comes from each target, so --url is refused."""
    if params.get("url") or ctx.find_root().params.get("url"):
        raise UsageError("--targets gives the databases: leave out --url")
    return build_config(
        url=None,
        project=params.get("project"),
        config_file=params.get("config_file"),
        lock_timeout=params.get("lock_timeout"),
    )


def _refuse(command: str, params: dict[str, Any], names: tuple[str, ...]) -> None:
    """UsageError when one of the options ``names`` (parameter names) was given."""
    given = [n for n in names if params.get(n) not in (None, False, (), "scoped", "table")]
    if given:
        flag = "--" + given[0].replace("_", "-").removesuffix("-mode")
        raise UsageError(
            f"{command} --targets does not take {flag}: run it on one target with --url",
        )


def _job(command: str, params: dict[str, Any]) -> Job:
    """The api verb ``command`` runs on each target, from the command's options."""
    builders: dict[str, Callable[[dict[str, Any]], Job]] = {
        "status": _status_job,
        "up": _up_job,
        "plan": _plan_job,
        "rollback": _rollback_job,
        "check": _check_job,
        "test": _test_job,
        "backup": _backup_job,
    }
    return builders[command](params)


def _status_job(params: dict[str, Any]) -> Job:
    def run_one(config: Config) -> Done:
        result = api.status(config)
        report = result.report
        latest = report.applied[-1].id if report.applied else "none"
        detail = f"{len(report.applied)} applied (latest {latest}), {len(report.pending)} pending"
        if result.problems():
            return Done("problems", result.attention(), exit_code=1)
        return Done("ok", detail)

    return Job(run_one, acts=False, reuse_connections=True)


def _up_job(params: dict[str, Any]) -> Job:
    _refuse("up", params, ("dry_run",))
    to = params.get("target")

    def run_one(config: Config) -> Done:
        result = api.up(
            config,
            to=to,
            allow_edited=bool(params.get("allow_edited")),
            allow_missing=bool(params.get("allow_missing")),
        )
        ran = [*result.applied, *result.repeatables]  # repeatables: Flyway's R__ files
        if not ran:
            return Done("ok", "nothing to apply")
        return Done("ok", "applied " + ", ".join(m.id for m in ran))

    return Job(run_one, acts=True, goal=AppliedUpTo(to))


def _plan_job(params: dict[str, Any]) -> Job:
    _refuse("plan", params, ("partial", "params", "migration_id"))
    if params.get("fmt") == "markdown":
        raise UsageError("plan --targets does not take --format markdown: use --json")

    def run_one(config: Config) -> Done:
        view = api.plan(
            config,
            to=params.get("target"),
            steps=params.get("steps"),
            backup=params["backup_mode"],
            exact=bool(params.get("exact")),
            simulate=bool(params.get("simulate")),
        )
        ids = view.plan.ids()
        detail = (
            f"rolls back {', '.join(ids)}; {view.impact.rows_lost()} row(s) lost"
            if ids
            else "nothing to roll back"
        )
        reasons = plan_refusals(view)
        if reasons:
            return Done("problems", "; ".join(reasons), exit_code=1)
        return Done("ok", detail)

    return Job(run_one, acts=False)


def _rollback_job(params: dict[str, Any]) -> Job:
    _refuse(
        "rollback",
        params,
        ("partial", "params", "migration_id", "steps", "dry_run", "resume", "undo_partial"),
    )
    to = params.get("target")
    if to is None:
        raise UsageError(
            "rollback --targets needs --to ID: the same goal on every target, so that running "
            "it again skips the targets already there (and rolls back nothing more)"
        )

    def run_one(config: Config) -> Done:
        result = api.rollback(
            config,
            to=to,
            backup=params["backup_mode"],
            accept_data_loss=bool(params.get("accept_data_loss")),
            exact=bool(params.get("exact")),
            simulate=bool(params.get("simulate")),
            ignore_simulation=bool(params.get("ignore_simulation")),
        )
        backup = result.backup.id if result.backup is not None else None
        if not result.rolled_back:
            return Done("ok", "nothing to roll back", backup)
        failed = [h for h in result.hooks if not h.ok]
        if failed:
            detail = f"{failed[0].describe()}; the rollback itself is committed"
            return Done("failed", detail, backup, exit_code=1)
        return Done("ok", "rolled back " + ", ".join(result.rolled_back), backup)

    question = f"Roll back every migration after {to} on {{n}} target(s)?"
    return Job(run_one, acts=True, goal=RolledBackTo(to), question=question)


def _check_job(params: dict[str, Any]) -> Job:
    def run_one(config: Config) -> Done:
        report = api.check(
            config,
            drift=not params.get("no_drift"),
            ignore_column_order=bool(params.get("ignore_column_order")),
        )
        if report.ok:
            return Done("ok", "nothing found")
        first = report.problems[0].message
        return Done("problems", f"{len(report.problems)} problem(s); the first: {first}", None, 1)

    return Job(run_one, acts=False)


def _test_job(params: dict[str, Any]) -> Job:
    _refuse("test", params, ("from_url",))

    def run_one(config: Config) -> Done:
        report = api.test(
            config,
            params.get("ids", ()),
            all_=bool(params.get("all_")),
            ignore_column_order=bool(params.get("ignore_column_order"))
            or not params.get("strict_column_order"),
            with_smoke=not params.get("no_smoke"),
            with_data=bool(params.get("with_data")),
        )
        if report.ok:
            return Done("ok", f"{len(report.migrations)} rehearsal(s) passed")
        failed = ", ".join(m.id for m in report.failed) or "the smoke hook"
        return Done("problems", f"rehearsal failed: {failed}", exit_code=1)

    return Job(run_one, acts=False)


def _backup_job(params: dict[str, Any]) -> Job:
    def run_one(config: Config) -> Done:
        record = api.backup(config, full=bool(params.get("full")))
        return Done("ok", f"{record.kind}, {record.total_rows} row(s)", record.id)

    return Job(run_one, acts=True)


def _confirm(job: Job, plan: FleetPlan, *, yes: bool, as_json: bool) -> None:
    """Ask once for the whole fleet (or need --yes without a terminal)."""
    if job.question is None or yes or plan.to_run == 0:
        return
    if not sys.stdin.isatty():
        raise Declined("this changes every target: pass --yes to confirm when not on a terminal")
    already = len(plan.already_done)
    more = f" ({already} other(s) already there)" if already else ""
    if not ask(job.question.format(n=plan.to_run) + more, err=as_json):
        raise Declined("declined: nothing was changed")


class _Stop(threading.Event):
    """Set when Ctrl-C or SIGTERM came; :attr:`signals` says which."""

    def __init__(self) -> None:
        super().__init__()
        self.signals: list[int] = []


@contextlib.contextmanager
def _stop_on_signal() -> Iterator[_Stop]:
    """Ctrl-C and SIGTERM stop the fleet gently: no new target starts, and the running ones
    finish (each commits or is undone as a whole); the event says which signal came."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum: int, _frame: object) -> None:
        stop.signals.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _progress(command: str, *, as_json: bool) -> Iterator[Callable[[FleetProgress], None]]:
    """The fleet's progress on stderr: a live line on a terminal, else a line per target."""
    out = render.console(err=True)
    if not out.is_terminal:

        def line(progress: FleetProgress) -> None:
            finished = progress.finished
            if finished is not None:
                seen = progress.done + progress.failed
                click.echo(
                    f"… [{seen}/{progress.total}] {finished.target.name}: "
                    f"{_outcome_text(finished)} ({finished.duration_s:.1f} s)",
                    err=True,
                )

        yield line
        return
    status = out.status(f"{command}: starting")
    status.start()

    def live(progress: FleetProgress) -> None:
        running = ", ".join(t.name for t in progress.running[:2])
        more = f" +{len(progress.running) - 2}" if len(progress.running) > 2 else ""
        status.update(
            f"{command}: {progress.done}/{progress.total} done, {progress.failed} failed, "
            f"{len(progress.running)} running {running}{more}"
        )

    try:
        yield live
    finally:
        status.stop()


def _outcome_text(result: TargetResult) -> str:
    if result.error is not None:
        return f"failed (exit {result.exit_code}): {mask_url(str(result.error))}"
    return f"{result.outcome.replace('_', ' ')}: {result.detail}" if result.detail else "ok"


_STYLE = {"ok": "green", "already_done": "dim", "problems": "yellow", "failed": "bold red"}


def _summary(command: str, result: FleetResult) -> None:
    """The table, one row per target, and the counts."""
    rows: list[list[render.Cell]] = []
    for r in result.results:
        detail = mask_url(str(r.error)) if r.error is not None else r.detail
        rows.append(
            [
                (r.target.name, ""),
                (r.outcome.replace("_", " "), _STYLE.get(r.outcome, "")),
                (r.backup or "", ""),
                (f"{r.duration_s:.1f}" if r.outcome not in ("already_done", "not_run") else "", ""),
                (detail, ""),
            ]
        )
    render.grid(["target", "outcome", "backup", "s", "detail"], rows)
    counts = ", ".join(
        f"{n} {o.replace('_', ' ')}" for o, n in result.counts().items() if n or o == "ok"
    )
    seconds = (result.finished - result.started).total_seconds()
    click.echo(f"\n{command} on {len(result.results)} target(s): {counts}, in {seconds:.1f} s.")
    if result.stopped:
        click.echo(f"note: {result.stopped}; run the same command again to go on.")


def _json(
    command: str,
    options: dict[str, Any],
    parallel: int,
    result: FleetResult,
    stop: _Stop,
) -> str:
    import json

    document = {
        "format": 1,
        "command": command,
        "outcome": _fleet_outcome(result, stop),
        "started_at": iso(result.started),
        "finished_at": iso(result.finished),
        "duration_s": round((result.finished - result.started).total_seconds(), 3),
        "error": _fleet_error(result, stop),
        "targets_file": str(options["targets"]),
        "parallel": parallel,
        "canary": int(options.get("canary", 0)),
        "keep_going": bool(options.get("keep_going")),
        "stopped": result.stopped or None,
        "counts": result.counts(),
        "targets": [_target_json(r) for r in result.results],
    }
    return json.dumps(document, indent=2, sort_keys=True)


def _target_json(r: TargetResult) -> dict[str, Any]:
    error = error_json(r.error) if r.error is not None else None
    if error is not None:
        error["message"] = mask_url(error["message"])
    return {
        "target": r.target.name,
        "origin": r.target.origin,
        "outcome": r.outcome,
        "exit_code": r.exit_code,
        "backup": r.backup,
        "duration_s": round(r.duration_s, 3),
        "detail": r.detail,
        "error": error,
    }


def _fleet_outcome(result: FleetResult, stop: _Stop) -> str:
    if stop.is_set():
        return "interrupted"
    return {0: "ok", 1: "problems"}.get(result.exit_code, "failed")


def _fleet_error(result: FleetResult, stop: _Stop) -> dict[str, Any] | None:
    code = _exit_code(result, stop)
    if code == 0:
        return None
    return {"message": _message(result, stop), "hint": None, "exit_code": code, "kind": "Fleet"}


def _exit_code(result: FleetResult, stop: _Stop) -> int:
    if stop.is_set():
        return Terminated.exit_code if signal.SIGTERM in stop.signals else 130
    return result.exit_code


def _message(result: FleetResult, stop: _Stop) -> str:
    failed = [r for r in result.results if r.outcome == "failed"]
    parts = []
    if failed:
        first = failed[0]
        parts.append(
            f"{len(failed)} of {len(result.results)} target(s) failed; the first: "
            f"{first.target.name}: {_failure_text(first)}"
        )
    if result.count("not_run"):
        parts.append(f"{result.count('not_run')} not run ({result.stopped})")
    if result.count("problems") and not parts:
        parts.append(f"{result.count('problems')} target(s) need attention (see the summary)")
    if stop.is_set():
        parts.insert(0, "interrupted: the targets running finished, no new one was started")
    return "; ".join(parts)


def _failure_text(result: TargetResult) -> str:
    """Why a target failed: its error, else (a rollback committed whose hook failed) its
    detail."""
    return mask_url(str(result.error)) if result.error is not None else result.detail


def _exit(result: FleetResult, stop: _Stop, *, as_json: bool) -> None:
    code = _exit_code(result, stop)
    if code:
        where = "the document's `targets`" if as_json else "the summary above"
        fail(_message(result, stop), f"each target's outcome and error are in {where}", code)
