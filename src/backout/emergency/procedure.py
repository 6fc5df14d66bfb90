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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from backout.analysis.checks import run_checks
from backout.backup.take import take_backup
from backout.dialects.base import utcnow
from backout.emergency.incident import EmergencyResult, StepRecord, render_incident
from backout.model.errors import BackoutError, CheckFailed, Declined
from backout.rollback.rollback import PlanView, build_view, refusals, rollback
from backout.run.history import Event
from backout.run.hooks import missing_hook_program, run_hook
from backout.run.workspace import Workspace

if TYPE_CHECKING:
    pass

STEPS = ("plan", "stop_app", "backup", "rollback", "deploy_previous", "check", "smoke")
#: the hooks the procedure runs (their programs are looked for before stop_app)
_HOOKS = ("stop_app", "before_rollback", "after_rollback", "deploy_previous", "smoke")


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
        procedure = _Procedure(
            ws, result, steps, to, dry_run, accept_data_loss, confirm, progress, ignore_simulation
        )
        procedure.run()
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


@dataclass
class _Procedure:
    """One run of the procedure's steps, in order, stopping at the first that fails."""

    ws: Workspace
    result: EmergencyResult
    steps: dict[str, StepRecord]
    to: str
    dry_run: bool
    accept_data_loss: bool
    confirm: Callable[[PlanView], bool] | None
    progress: Callable[[StepRecord], None] | None
    ignore_simulation: bool

    def run(self) -> None:
        """Plan, then the steps with side effects; stop at the first that fails."""
        if not self.step("plan", self.plan_step):
            return
        for name, body in (
            ("stop_app", self.hook_step("stop_app")),
            ("backup", self.backup_step),
            ("rollback", self.rollback_step),
            ("deploy_previous", self.hook_step("deploy_previous")),
            ("check", self.check_step),
            ("smoke", self.hook_step("smoke")),
        ):
            if not self.step(name, body):
                return

    def step(self, name: str, body: Callable[[StepRecord], None]) -> bool:
        """Run one step into its record; False when it failed."""
        record = self.steps[name]
        record.started = utcnow()
        try:
            body(record)
            if record.status == "pending":
                record.status = "dry-run" if self.dry_run else "ok"
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
        if self.progress:
            self.progress(record)
        return record.status != "failed"

    def plan_step(self, record: StepRecord) -> None:
        """Plan the rollback and find every refusal before the first side effect; confirm."""
        ws, result = self.ws, self.result
        with ws.session(create=False) as session:
            view = build_view(
                ws, session, to=self.to, steps=None, backup_mode="full", simulate=True
            )
            result.view = view
            if view.plan.empty:
                raise BackoutError(
                    f"nothing to roll back: {self.to} is the latest applied migration"
                )
            # Every check the later steps make, made before stop_app: a refusal found only at
            # the rollback step would leave the application stopped for nothing.
            found = refusals(
                ws,
                session,
                view,
                accept_data_loss=self.accept_data_loss,
                ignore_simulation=self.ignore_simulation,
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
        if not self.dry_run and self.confirm is not None and not self.confirm(view):
            raise Declined("emergency declined: nothing was changed")

    def hook_step(self, name: str) -> Callable[[StepRecord], None]:
        """The step running hook ``name`` (skipped when none is configured)."""

        def body(record: StepRecord) -> None:
            command = self.ws.config.hooks.get(name, "").strip()
            if not command:
                record.status = "skipped"
                record.detail = f"no {name} hook configured"
                return
            record.detail = command
            if self.dry_run:
                record.detail = f"would run: {command}"
                return
            hook = run_hook(self.ws.config, name, self.ws.url)
            assert hook is not None
            self.result.hooks.append(hook)
            record.output = hook.output
            if not hook.ok:
                raise CheckFailed(hook.describe())

        return body

    def backup_step(self, record: StepRecord) -> None:
        """A full backup of the current state, even a broken one."""
        if self.dry_run:
            record.detail = "would take a full backup of the current state"
            return

        result = self.result
        with self.ws.session() as session:
            result.backup = take_backup(
                self.ws,
                session,
                kind="full",
                reason=f"emergency before rollback to {result.target}",
            )
        record.detail = f"{result.backup.id} (sha256 {result.backup.sha256})"

    def rollback_step(self, record: StepRecord) -> None:
        """The real rollback, with the backup just taken; a failed hook after it warns."""
        result = self.result
        result.rollback = rollback(
            self.ws,
            to=self.to,
            dry_run=self.dry_run,
            backup_mode="full",
            accept_data_loss=self.accept_data_loss,
            confirm=None,
            simulate=False,
            existing_backup=result.backup,
            ignore_simulation=self.ignore_simulation,
        )
        done = result.rollback
        if self.dry_run:
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

    def check_step(self, record: StepRecord) -> None:
        """``backout check``: orphans, leftovers, verify queries."""
        report = run_checks(self.ws)
        self.result.checks = report
        record.detail = "no problem found" if report.ok else f"{len(report.problems)} problem(s)"
        record.output = "\n".join(p.message for p in report.problems)
        if not report.ok:
            raise CheckFailed(f"check found {len(report.problems)} problem(s)")


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
    result.where_things_stand, result.next_steps = _after_failure(
        result, failed, steps, deployed, undeployed, restore
    )


def _after_failure(
    result: EmergencyResult,
    failed: StepRecord,
    steps: dict[str, StepRecord],
    deployed: str,
    undeployed: list[str],
    restore: str,
) -> tuple[str, list[str]]:
    """Where things stand and what to do next after step ``failed`` failed."""
    backup = result.backup
    name = failed.name
    stopped = steps["stop_app"].status in ("ok",)
    app = "The application is stopped (stop_app ran). " if stopped else ""
    if name == "plan" and result.refusals:
        return (
            "Nothing was changed (no hook run, no backup taken): the rollback would be refused.",
            [
                *(f"fix the cause: {reason}" for reason in result.refusals),
                "then run the emergency again",
            ],
        )
    if name == "plan":
        return (
            "Nothing was changed: the rollback cannot be planned.",
            [f"fix the cause: {failed.detail}", "then run the emergency again"],
        )
    if name == "stop_app":
        return (
            "Nothing was changed in the database; stop_app failed.",
            ["stop the application by hand", "then run the emergency again"],
        )
    if name == "backup":
        return (
            app + "No backup could be taken, so nothing was rolled back.",
            [
                "fix the backup problem (disk space, pg_dump version, folder)",
                "then run the emergency again",
            ],
        )
    if name == "rollback":
        return (
            app + "The rollback failed and was undone: the database is as it was before it "
            f"(backup {backup.id if backup else 'none'} holds that state too).",
            [
                f"fix the cause: {failed.detail}",
                f"then `backout rollback --to {result.target}`, or restore {restore}",
            ],
        )
    if name == "deploy_previous":
        return (
            app + f"The database IS rolled back to {result.target}, but deploying the previous "
            "version failed: the running code may not match the schema.",
            ["deploy the previous version by hand", f"or, to undo the rollback, {restore}"],
        )
    return (
        f"The database is rolled back to {result.target} and {deployed}, but {name} found "
        "problems.",
        [*undeployed, f"investigate: {failed.detail}", f"if needed, {restore}"],
    )


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
