"""``backout emergency --to ID``: the seeds' Emergency Rollback Procedure as one command.

1. the ``stop_app`` hook ("stop the application to prevent further data corruption");
2. a FULL backup of the current state, even if it is broken;
3. the rollback to ID (the real rollback: lock, one transaction, require/verify, history);
4. the ``deploy_previous`` hook ("deploy the previous version");
5. ``check`` and the ``smoke`` hook ("monitor closely").

It stops at the first failure and says where things stand and what to do next. In every case
it writes an incident report in Markdown (``incidents/<timestamp>_<target>.md``): the timeline,
commands, outputs, rows lost per table, the backup's path and checksum, the checks, and a blank
"root cause / follow-ups" section ("document the incident"). ``dry_run`` rehearses all of it
without changing anything (hooks are not run; the report is marked as a dry run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from backout.dialects.base import utcnow
from backout.model.errors import BackoutError, CheckFailed, Declined
from backout.rollback.rollback import PlanView, RollbackResult, build_view, refusals, rollback
from backout.run.history import Event
from backout.run.hooks import HookResult, missing_hook_program, run_hook
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    from backout.analysis.checks import CheckReport
    from backout.backup.backup import BackupRecord

STEPS = ("plan", "stop_app", "backup", "rollback", "deploy_previous", "check", "smoke")
#: the hooks the procedure runs (their programs are looked for before stop_app)
_HOOKS = ("stop_app", "before_rollback", "after_rollback", "deploy_previous", "smoke")


@dataclass
class StepRecord:
    """One step of the timeline."""

    name: str
    title: str
    status: str = "pending"  # ok | failed | skipped | dry-run | pending
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    detail: str = ""
    output: str = ""
    exit_code: int | None = None

    @property
    def seconds(self) -> float:
        """Duration of the step."""
        if self.started is None or self.finished is None:
            return 0.0
        return (self.finished - self.started).total_seconds()


@dataclass
class EmergencyResult:
    """What the emergency procedure did, and where things stand."""

    target: str
    dry_run: bool
    steps: list[StepRecord]
    report: Path | None = None
    view: PlanView | None = None
    backup: BackupRecord | None = None
    rollback: RollbackResult | None = None
    checks: CheckReport | None = None
    hooks: list[HookResult] = field(default_factory=list)
    #: what went wrong without stopping the procedure (a failed after_rollback hook)
    warnings: list[str] = field(default_factory=list)
    #: every reason the rollback would be refused, found before the first side effect
    refusals: list[str] = field(default_factory=list)
    where_things_stand: str = ""
    next_steps: list[str] = field(default_factory=list)

    @property
    def failed(self) -> StepRecord | None:
        """The step that failed, if any."""
        return next((s for s in self.steps if s.status == "failed"), None)

    @property
    def exit_code(self) -> int:
        """0 when every step passed (or was skipped) with no warning; 1 after a warning; else
        the failing step's code."""
        failed = self.failed
        if failed is None:
            return 1 if self.warnings else 0
        return failed.exit_code or 1


_TITLES = {
    "plan": "Plan the rollback and confirm",
    "stop_app": "Stop the application (stop_app hook)",
    "backup": "Full backup of the current state",
    "rollback": "Roll back",
    "deploy_previous": "Deploy the previous version (deploy_previous hook)",
    "check": "Check: orphans, leftovers, verify queries",
    "smoke": "Smoke test (smoke hook)",
}


def emergency(
    ws: Workspace,
    *,
    to: str,
    dry_run: bool = False,
    accept_data_loss: bool = False,
    confirm: Callable[[PlanView], bool] | None = None,
    progress: Callable[[StepRecord], None] | None = None,
    incidents_dir: Path | None = None,
    ignore_simulation: bool = False,
) -> EmergencyResult:
    """Run the emergency procedure; never raises for a step's failure (see the result).

    The plan step makes every check the later steps make (see
    :func:`backout.rollback.rollback.refusals`), so a refusal comes before ``stop_app``; a dry run
    reports the same refusals."""
    target_id = _target_id(ws, to)
    result = EmergencyResult(
        target=target_id,
        dry_run=dry_run,
        steps=[StepRecord(name, _TITLES[name]) for name in STEPS],
    )
    started = utcnow()
    steps = {s.name: s for s in result.steps}
    try:
        _run(ws, result, steps, to, dry_run, accept_data_loss, confirm, progress, ignore_simulation)
    finally:
        _conclude(ws, result, steps)
        result.report = _write_report(ws, result, started, incidents_dir)
        if not dry_run and _touched_database(result):
            _record(ws, result, started)
    return result


def _target_id(ws: Workspace, to: str) -> str:
    try:
        return ws.project.find(to).id
    except BackoutError:
        return to


def _run(
    ws: Workspace,
    result: EmergencyResult,
    steps: dict[str, StepRecord],
    to: str,
    dry_run: bool,
    accept_data_loss: bool,
    confirm: Callable[[PlanView], bool] | None,
    progress: Callable[[StepRecord], None] | None,
    ignore_simulation: bool,
) -> None:
    def step(name: str, body: Callable[[StepRecord], None]) -> bool:
        record = steps[name]
        record.started = utcnow()
        try:
            body(record)
            if record.status == "pending":
                record.status = "dry-run" if dry_run else "ok"
        except BackoutError as exc:
            record.status = "failed"
            record.detail = str(exc) + (f" ({exc.hint})" if exc.hint else "")
            record.exit_code = exc.exit_code
        except KeyboardInterrupt as exc:
            record.status = "failed"
            record.detail = str(exc) or "interrupted (Ctrl-C)"
            record.exit_code = int(getattr(exc, "exit_code", 130))
        except BaseException as exc:
            # Not a step's failure but the run's end: the report must not read as a success.
            record.status = "failed"
            record.detail = f"stopped by {type(exc).__name__}: {exc}"
            record.exit_code = 1
            record.finished = utcnow()
            raise
        record.finished = utcnow()
        if progress:
            progress(record)
        return record.status != "failed"

    def do_plan(record: StepRecord) -> None:
        with ws.session(create=False) as session:
            view = build_view(ws, session, to=to, steps=None, backup_mode="full", simulate=True)
            result.view = view
            if view.plan.empty:
                raise BackoutError(f"nothing to roll back: {to} is the latest applied migration")
            # Every check the later steps make, made before stop_app: a refusal found only at
            # the rollback step would leave the application stopped for nothing.
            found = refusals(
                ws,
                session,
                view,
                accept_data_loss=accept_data_loss,
                ignore_simulation=ignore_simulation,
                backup_mode="full",
            )
        found += [
            missing
            for name in _HOOKS
            if (missing := missing_hook_program(ws.config, name)) is not None
        ]
        if found:
            result.refusals = [_one_line(exc) for exc in found]
            record.status = "failed"
            record.detail = "; ".join(result.refusals)
            record.exit_code = found[0].exit_code
            return
        record.detail = f"roll back {', '.join(view.plan.ids())} (risk {view.impact.risk.name})"
        if not dry_run and confirm is not None and not confirm(view):
            raise Declined("emergency declined: nothing was changed")

    def do_hook(name: str) -> Callable[[StepRecord], None]:
        def body(record: StepRecord) -> None:
            command = ws.config.hooks.get(name, "").strip()
            if not command:
                record.status = "skipped"
                record.detail = f"no {name} hook configured"
                return
            record.detail = command
            if dry_run:
                record.detail = f"would run: {command}"
                return
            hook = run_hook(ws.config, name, ws.url)
            assert hook is not None
            result.hooks.append(hook)
            record.output = hook.output
            if not hook.ok:
                raise CheckFailed(hook.describe())

        return body

    def do_backup(record: StepRecord) -> None:
        if dry_run:
            record.detail = "would take a full backup of the current state"
            return
        from backout.backup.backup import take_backup

        with ws.session() as session:
            result.backup = take_backup(
                ws, session, kind="full", reason=f"emergency before rollback to {result.target}"
            )
        record.detail = f"{result.backup.id} (sha256 {result.backup.sha256})"

    def do_rollback(record: StepRecord) -> None:
        result.rollback = rollback(
            ws,
            to=to,
            dry_run=dry_run,
            backup_mode="full",
            accept_data_loss=accept_data_loss,
            confirm=None,
            simulate=False,
            existing_backup=result.backup,
            ignore_simulation=ignore_simulation,
        )
        done = result.rollback
        if dry_run:
            record.output = "\n".join(done.transcript)
            record.detail = f"would roll back {', '.join(done.view.plan.ids())}"
        else:
            record.detail = (
                f"rolled back {', '.join(done.rolled_back)}: {done.statements} statements "
                f"in {done.duration_s:.2f} s"
            )
        for hook in done.hooks:
            result.hooks.append(hook)
            if not hook.ok:
                # The database is rolled back: go on to deploy the previous version.
                record.detail += f"; {hook.describe()}"
                result.warnings.append(f"{hook.describe()}: the rollback stands; run it by hand")

    def do_check(record: StepRecord) -> None:
        from backout.analysis.checks import run_checks

        report = run_checks(ws)
        result.checks = report
        record.detail = "no problem found" if report.ok else f"{len(report.problems)} problem(s)"
        record.output = "\n".join(p.message for p in report.problems)
        if not report.ok:
            raise CheckFailed(f"check found {len(report.problems)} problem(s)")

    plan_ok = step("plan", do_plan)
    if not plan_ok:
        return
    for name, body in (
        ("stop_app", do_hook("stop_app")),
        ("backup", do_backup),
        ("rollback", do_rollback),
        ("deploy_previous", do_hook("deploy_previous")),
        ("check", do_check),
        ("smoke", do_hook("smoke")),
    ):
        if not step(name, body):
            return


def _conclude(ws: Workspace, result: EmergencyResult, steps: dict[str, StepRecord]) -> None:
    """Where things stand and what to do next, from the step that failed (if any)."""
    failed = result.failed
    backup = result.backup
    restore = f"`backout restore {backup.id}`" if backup else "`backout restore <backup>`"
    if result.dry_run and failed is None:
        result.where_things_stand = "Dry run: nothing was changed. The procedure can run."
        result.next_steps = [f"run `backout emergency --to {result.target}` for real"]
        return
    deployed, undeployed = _deployment(steps)
    if failed is None:
        smoke = "" if steps["smoke"].status == "ok" else " (no smoke test ran)"
        result.where_things_stand = (
            f"The database is rolled back to {result.target}; {deployed} and the checks "
            f"passed{smoke}."
        )
        result.next_steps = [
            *undeployed,
            "monitor the application closely",
            *(
                f"manual step: {text}"
                for _, text in (result.rollback.manual if result.rollback else [])
            ),
            *result.warnings,
            "fill in the root cause and follow-ups of this report",
        ]
        return
    name = failed.name
    stopped = steps["stop_app"].status in ("ok",)
    app = "The application is stopped (stop_app ran). " if stopped else ""
    if name == "plan" and result.refusals:
        result.where_things_stand = (
            "Nothing was changed (no hook run, no backup taken): the rollback would be refused."
        )
        result.next_steps = [
            *(f"fix the cause: {reason}" for reason in result.refusals),
            "then run the emergency again",
        ]
    elif name == "plan":
        result.where_things_stand = "Nothing was changed: the rollback cannot be planned."
        result.next_steps = [f"fix the cause: {failed.detail}", "then run the emergency again"]
    elif name == "stop_app":
        result.where_things_stand = "Nothing was changed in the database; stop_app failed."
        result.next_steps = ["stop the application by hand", "then run the emergency again"]
    elif name == "backup":
        result.where_things_stand = app + "No backup could be taken, so nothing was rolled back."
        result.next_steps = [
            "fix the backup problem (disk space, pg_dump version, folder)",
            "then run the emergency again",
        ]
    elif name == "rollback":
        result.where_things_stand = (
            app + "The rollback failed and was undone: the database is as it was before it "
            f"(backup {backup.id if backup else 'none'} holds that state too)."
        )
        result.next_steps = [
            f"fix the cause: {failed.detail}",
            f"then `backout rollback --to {result.target}`, or restore {restore}",
        ]
    elif name == "deploy_previous":
        result.where_things_stand = (
            app + f"The database IS rolled back to {result.target}, but deploying the previous "
            "version failed: the running code may not match the schema."
        )
        result.next_steps = [
            "deploy the previous version by hand",
            f"or, to undo the rollback, {restore}",
        ]
    else:
        result.where_things_stand = (
            f"The database is rolled back to {result.target} and {deployed}, but {name} found "
            "problems."
        )
        result.next_steps = [*undeployed, f"investigate: {failed.detail}", f"if needed, {restore}"]


def _deployment(steps: dict[str, StepRecord]) -> tuple[str, list[str]]:
    """(what is true of the application after the rollback, what is left to do by hand):
    without a deploy_previous hook nothing deployed the previous version, and an application
    stop_app stopped is still stopped."""
    if steps["deploy_previous"].status == "ok":
        return "the previous version is deployed", []
    if steps["stop_app"].status == "ok":
        return (
            "no deploy_previous hook is configured: the application is still stopped "
            "(stop_app ran)",
            ["deploy the previous version and start the application: it is still stopped"],
        )
    return (
        "no deploy_previous hook is configured: nothing deployed the previous version",
        ["deploy the previous version: the running code may not match the schema"],
    )


def _touched_database(result: EmergencyResult) -> bool:
    """Whether the run got as far as the database: a backup or the rollback was attempted.

    An emergency that stopped at the plan, the confirmation or the stop_app hook changed
    nothing, and leaves the database byte-identical (the incident report tells its story)."""
    return any(
        s.name in ("backup", "rollback") and s.status not in ("pending", "skipped")
        for s in result.steps
    )


def _record(ws: Workspace, result: EmergencyResult, started: dt.datetime) -> None:
    event = Event(
        event="emergency",
        outcome="failed" if result.failed else "ok",
        started_at=started,
        finished_at=utcnow(),
        actor=ws.actor,
        migration=result.target,
        backup=result.backup.id if result.backup else None,
        error=result.failed.detail if result.failed else None,
        details={
            "steps": {s.name: s.status for s in result.steps},
            "report": str(result.report) if result.report else None,
            # checked by restore: the catalog beside the file could be edited with it
            **({"backup_sha256": result.backup.sha256} if result.backup else {}),
        },
    )
    try:
        with ws.session() as session:
            ws.record_alone(session, event)
    except BackoutError as exc:
        result.next_steps.append(f"the emergency could not be recorded in history: {exc}")


def _write_report(
    ws: Workspace, result: EmergencyResult, started: dt.datetime, folder: Path | None
) -> Path:
    from backout.emergency.incident import render_incident

    folder = folder or ws.config.root / "incidents"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    suffix = "_dry-run" if result.dry_run else ""
    path = folder / f"{stamp}_{_safe(result.target)}{suffix}.md"
    path.write_text(render_incident(ws, result, started), encoding="utf-8")
    return path


def _one_line(exc: BackoutError) -> str:
    """An error and its hint as one line."""
    return str(exc) + (f" ({exc.hint})" if exc.hint else "")


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]
