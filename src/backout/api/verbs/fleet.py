"""``--targets FILE``: one command over many databases or schemas (docs/fleet.md).

:func:`fleet_plan` reads the targets file and, for a command with a goal (``up``,
``rollback --to``), which targets are already there, refusing the whole run when a target
cannot be read; :func:`fleet_run` then runs the command's api verb on each target that is
not (the caller passes it in as ``run_one``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backout.dialects.client_programs import shielded_from_interrupts
from backout.dialects.pool import ConnectionPool, reusing
from backout.fleet import goals
from backout.fleet.run import Done, FleetProgress, FleetResult, probe_all, run_fleet
from backout.fleet.targets import Target, lock_scope, read_targets, sharing_a_database
from backout.model.errors import ConfigError
from backout.project.config import Config
from backout.run.workspace import Workspace

__all__ = ["Done", "FleetPlan", "FleetProgress", "FleetResult", "fleet_plan", "fleet_run"]


@dataclass(frozen=True)
class FleetPlan:
    """The targets of a fleet run, and which of them are already where the command goes."""

    config: Config
    targets: tuple[Target, ...]
    #: indexes of :attr:`targets` already at the goal (skipped)
    already_done: frozenset[int]
    #: the command takes the run lock: targets sharing one run one after the other
    acts: bool
    goal: goals.Goal | None = None

    def config_for(self, target: Target) -> Config:
        """The configuration of one target: the project's, with the target's URL."""
        return self.config.with_overrides(database_url=target.url, url_source="targets")

    @property
    def to_run(self) -> int:
        """How many targets the run will start (at most)."""
        return len(self.targets) - len(self.already_done)


def fleet_plan(
    config: Config,
    targets_file: Path,
    *,
    acts: bool,
    goal: goals.Goal | None = None,
    parallel: int = 1,
) -> FleetPlan:
    """Read the targets file and, with a goal, each target's state (``parallel`` at a time).

    Refuses (the error names the file and line, or the target) before any target is run: a
    bad or empty file, a target listed twice, and for a command that changes databases a
    target that cannot be reached (or, with a goal, read).
    """
    targets = tuple(read_targets(targets_file, base_dir=config.root))
    plan = FleetPlan(config, targets, frozenset(), acts, goal)
    _refuse_shared_ledger(plan)
    if goal is None and not acts:
        return plan  # read-only: an unreachable target is a failed target, nothing to protect

    def probe(target: Target) -> bool:
        if goal is None:
            return goals.reachable(plan.config_for(target))
        return goals.reached(plan.config_for(target), goal)

    done = probe_all(targets, probe, parallel=parallel)
    return FleetPlan(config, targets, frozenset(done), acts, goal)


def fleet_run(
    plan: FleetPlan,
    run_one: Callable[[Config], Done],
    *,
    parallel: int = 1,
    keep_going: bool = False,
    canary: int = 0,
    progress: Callable[[FleetProgress], None] | None = None,
    stop: threading.Event | None = None,
    reuse_connections: bool = False,
) -> FleetResult:
    """Run ``run_one`` (an api verb on one target's Config) on every target not already
    there (see :func:`backout.fleet.run.run_fleet`).

    ``reuse_connections`` (read-only commands that take no lock: ``status``): a session's
    connection is handed to the next target on the same database (schemas of one database)
    instead of being closed and opened again (:mod:`backout.dialects.pool`).
    """
    root = plan.config.root
    pool = ConnectionPool(max_idle=parallel) if reuse_connections else None

    def one(target: Target) -> Done:
        # Ctrl-C stops the fleet, not the targets running: their client programs are
        # out of the terminal's process group.
        reuse = reusing(pool) if pool is not None else contextlib.nullcontext()
        with shielded_from_interrupts(), reuse:
            return run_one(plan.config_for(target))

    try:
        return _run(plan, one, root, parallel, keep_going, canary, progress, stop)
    finally:
        if pool is not None:
            pool.close()


def _run(
    plan: FleetPlan,
    one: Callable[[Target], Done],
    root: Path,
    parallel: int,
    keep_going: bool,
    canary: int,
    progress: Callable[[FleetProgress], None] | None,
    stop: threading.Event | None,
) -> FleetResult:
    return run_fleet(
        plan.targets,
        one,
        parallel=parallel,
        keep_going=keep_going,
        canary=canary,
        already_done=set(plan.already_done),
        scope=(lambda target: lock_scope(target, root)) if plan.acts else None,
        progress=progress,
        stop=stop,
    )


def _refuse_shared_ledger(plan: FleetPlan) -> None:
    """Schemas of one database as targets need a ledger per schema: Prisma's
    ``_prisma_migrations`` lives in each ``?schema=``; backout's own ledger (plain, dbmate
    layouts) is one table for the whole database, so every schema would read the others'
    history."""
    pair = sharing_a_database(list(plan.targets), plan.config.root)
    if pair is None:
        return
    ws = Workspace.open(plan.config_for(pair[0]))
    if ws.project.ledger == "prisma":
        return
    raise ConfigError(
        f"{pair[1].origin}: {pair[1].name} and {pair[0].name} ({pair[0].origin}) are schemas "
        f"of one database, but the {ws.project.layout} layout records every schema's "
        f"migrations in one table ({ws.ledger.name}): schema tenants need the Prisma layout, "
        "whose _prisma_migrations lives in each schema",
        hint="or give each tenant a database of its own",
    )
