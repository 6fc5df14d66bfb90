"""Pure rollback planning: (migrations, state, target) → RollbackPlan, or a refusal.

Planning happens before anything touches the database, and refuses impossible requests with
every problem listed at once (all missing rollback scripts, not just the first).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from backout.model.errors import HistoryError, LockError, ProjectError, UsageError
from backout.model.script import Risk, Script, convert_param
from backout.project.migration import Migration, Project
from backout.run.status import MigrationStatus, State, StatusReport


@dataclass(frozen=True)
class PlanStep:
    """One migration to roll back, with the script that does it."""

    migration: Migration
    script: Script
    applied_at: dt.datetime | None
    #: the forward script changed since it was applied: the rollback may not match reality
    edited: bool = False

    @property
    def declared_risk(self) -> Risk | None:
        """The risk the rollback's author declared."""
        return self.script.directives.risk


@dataclass(frozen=True)
class RollbackPlan:
    """Migrations to roll back, newest first, and what stays applied afterwards."""

    steps: tuple[PlanStep, ...]
    #: the newest migration still applied afterwards (None: nothing stays applied)
    target: str | None
    #: the partial rollback's name (data only; applied state does not change)
    partial: str | None = None

    @property
    def empty(self) -> bool:
        """Nothing to roll back."""
        return not self.steps

    def ids(self) -> list[str]:
        """Migration ids in execution order."""
        return [s.migration.id for s in self.steps]

    @property
    def declared_risk(self) -> Risk:
        """The highest risk any script declares (undeclared counts as HIGH)."""
        risks = [s.declared_risk if s.declared_risk is not None else Risk.HIGH for s in self.steps]
        return max(risks, default=Risk.NONE)


def plan_rollback(
    project: Project, report: StatusReport, *, to: str | None = None, steps: int | None = None
) -> RollbackPlan:
    """Which applied migrations to roll back: the last ``steps`` (default 1), or all after ``to``.

    ``to`` stays applied. Raises UsageError for contradictory or impossible targets,
    HistoryError while a migration is failed, and ProjectError listing every migration in
    range without a rollback script.
    """
    if to is not None and steps is not None:
        raise UsageError("give --to or --steps, not both")
    if steps is not None and steps < 1:
        raise UsageError(f"--steps must be at least 1 (got {steps})")
    _refuse_unsettled(report)
    applied = [e for e in report.entries if e.is_applied]
    if not applied and to is None and steps is None:
        # Like `up` with nothing pending: the database already is where a rollback goes.
        return RollbackPlan(steps=(), target=None)
    if to is not None:
        target = project.find(to)
        entry = report.entry(target.key)
        if entry is None or entry.state is not State.APPLIED:
            state = entry.state.value.replace("_", " ") if entry else "unknown"
            raise UsageError(
                f"target {target.id} is {state}, not applied: --to names the migration that "
                "stays applied"
            )
        position = next(i for i, e in enumerate(applied) if e.key == target.key)
        chosen = applied[position + 1 :]
        remaining: str | None = target.id
    else:
        count = steps or 1
        if count > len(applied):
            raise UsageError(f"--steps {count}: only {len(applied)} migration(s) are applied")
        chosen = applied[len(applied) - count :]
        remaining = applied[-count - 1].id if len(applied) > count else None
    return RollbackPlan(steps=_plan_steps(chosen), target=remaining)


def _refuse_unsettled(report: StatusReport) -> None:
    """Refuse while a migration is being applied (LockError) or failed (HistoryError)."""
    if report.applying:
        applying = report.applying[0]
        raise LockError(
            f"migration {applying.id} is being applied: {applying.applying_by}",
            hint="wait for that run to finish, then look at `backout status`",
        )
    if report.failed:
        failed = report.failed[0]
        raise HistoryError(
            f"migration {failed.id} failed and is not resolved; roll back only from a known state",
            hint=f"`backout resolve {failed.id} --rolled-back` (or --applied), "
            "or `backout restore`",
        )


def _plan_steps(chosen: Sequence[MigrationStatus]) -> tuple[PlanStep, ...]:
    """The steps rolling back ``chosen`` (oldest first), newest first; ProjectError listing
    every one without a rollback script."""
    problems: list[str] = []
    plan_steps: list[PlanStep] = []
    for entry in reversed(chosen):
        migration = entry.migration
        if migration is None:
            problems.append(f"{entry.id} (its files are missing from disk)")
            continue
        if migration.down is None:
            problems.append(migration.id)
            continue
        plan_steps.append(
            PlanStep(
                migration=migration,
                script=migration.down,
                applied_at=entry.applied_at,
                edited=entry.edited,
            )
        )
    if problems:
        first = next((p for p in problems if "(" not in p), None)
        raise ProjectError(
            f"cannot roll back: no rollback script for {len(problems)} migration(s) in range: "
            + ", ".join(problems),
            hint=f"scaffold one with `backout new {first}`" if first else None,
        )
    return tuple(plan_steps)


def plan_partial(
    project: Project, report: StatusReport, ref: str | None, name: str
) -> RollbackPlan:
    """The one-step plan of a partial (data-only) rollback; the migration stays applied.

    ``ref`` may be omitted when exactly one migration has a partial called ``name``.
    """
    if ref is not None:
        migration = project.find(ref)
    else:
        owners = [m for m in project.migrations if m.partial(name) is not None]
        if len(owners) != 1:
            every = sorted({p for m in project.migrations for p, _ in m.partials})
            if not owners:
                known = ", ".join(every) or "none"
                raise UsageError(f"no migration has a partial rollback '{name}' (known: {known})")
            ids = ", ".join(m.id for m in owners)
            raise UsageError(f"partial rollback '{name}' exists for {ids}: name the migration")
        migration = owners[0]
    script = migration.partial(name)
    if script is None:
        known = ", ".join(p for p, _ in migration.partials) or "none"
        raise UsageError(
            f"migration {migration.id} has no partial rollback '{name}' (it has: {known})"
        )
    entry = report.entry(migration.key)
    if entry is None or entry.state is not State.APPLIED:
        state = entry.state.value.replace("_", " ") if entry else "unknown"
        raise UsageError(
            f"migration {migration.id} is {state}: a partial rollback works on the data of an "
            "applied migration"
        )
    step = PlanStep(migration=migration, script=script, applied_at=entry.applied_at)
    applied = [e.id for e in report.entries if e.is_applied]
    return RollbackPlan(steps=(step,), target=applied[-1] if applied else None, partial=name)


def resolve_params(script: Script, given: Mapping[str, str]) -> dict[str, object]:
    """Typed values for a partial's declared parameters; every problem reported at once.

    Unknown names, missing values (without a default) and values of the wrong type are
    UsageErrors raised before anything runs.
    """
    declared = {p.name: p for p in script.directives.params}
    problems: list[str] = []
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(declared) or "none"
        problems.append(f"unknown parameter(s) {', '.join(unknown)} (declared: {known})")
    values: dict[str, object] = {}
    for name, spec in declared.items():
        raw = given.get(name, spec.default)
        if raw is None:
            problems.append(f"missing --param {name}=<{spec.type}>")
            continue
        try:
            values[name] = convert_param(spec.type, raw)
        except ValueError as exc:
            problems.append(f"--param {name}: not a valid {spec.type} ({exc})")
    if problems:
        raise UsageError(f"{script.display}: " + "; ".join(problems))
    return values
