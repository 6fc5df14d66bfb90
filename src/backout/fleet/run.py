"""Running one command over every target: in parallel, a canary first, stopping at the first
failure unless asked to keep going.

Each target runs in a thread of its own through ``run_one`` (the layer above passes the api
verb in): its own connections, run lock, backup and history event, exactly as a single
``backout <command> --url TARGET``. Targets that share a run lock (schemas of one database)
run one after the other when the command takes it, rather than queue for it. Nothing here
prints: ``progress`` is told as targets start and finish, always from the calling thread.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import ClassVar

from backout.fleet.targets import Target
from backout.model.errors import BackoutError

__all__ = [
    "FAILED_EXIT",
    "Done",
    "FleetProgress",
    "FleetResult",
    "Probe",
    "TargetResult",
    "probe_all",
    "run_fleet",
]

#: the exit code of a fleet run in which a target failed (each target's own is in the summary)
FAILED_EXIT = 7

#: the outcomes of a target, in the order the summary counts them
OUTCOMES = ("ok", "already_done", "problems", "failed", "not_run")


class UnexpectedError(BackoutError):
    """An exception backout did not raise on purpose (a bug), caught on one target."""

    exit_code: ClassVar[int] = 1


@dataclass(frozen=True)
class Done:
    """What the command did on one target that it ran to the end on."""

    #: ``ok``, or ``problems``: a read-only command found something (its exit code 1)
    outcome: str = "ok"
    #: one line: what it did or found
    detail: str = ""
    #: the backup it took (rollback, backup)
    backup: str | None = None
    exit_code: int = 0


@dataclass
class TargetResult:
    """One target's line of the summary."""

    target: Target
    #: one of :data:`OUTCOMES`
    outcome: str
    exit_code: int = 0
    detail: str = ""
    backup: str | None = None
    duration_s: float = 0.0
    error: BackoutError | None = None


@dataclass
class FleetResult:
    """Every target's result, in the targets file's order."""

    results: list[TargetResult]
    started: dt.datetime
    finished: dt.datetime
    #: why targets were left unrun: "" (none were), or the failure, canary or stop that did it
    stopped: str = ""

    def count(self, outcome: str) -> int:
        """Targets with this outcome."""
        return sum(1 for r in self.results if r.outcome == outcome)

    def counts(self) -> dict[str, int]:
        """Targets per outcome (every outcome, zeros included)."""
        return {o: self.count(o) for o in OUTCOMES}

    @property
    def exit_code(self) -> int:
        """0 every target ok or already there; 1 only problems found (read-only commands);
        :data:`FAILED_EXIT` a target failed, or some were not run."""
        if self.count("failed") or self.count("not_run"):
            return FAILED_EXIT
        return 1 if self.count("problems") else 0


@dataclass(frozen=True)
class FleetProgress:
    """Where the run stands, for a progress display."""

    total: int
    done: int
    failed: int
    running: tuple[Target, ...]
    #: the target that just finished (None: one just started)
    finished: TargetResult | None = None


#: (is the target already where the command takes it?) for one target; raises when it cannot
#: be read (unreachable), which refuses the whole run before anything changes
Probe = Callable[[Target], bool]


def probe_all(targets: Sequence[Target], probe: Probe, *, parallel: int) -> set[int]:
    """The indexes of the targets already there, reading them ``parallel`` at a time. The
    first target that cannot be read is raised, prefixed with its name: nothing has run."""
    with ThreadPoolExecutor(max(1, parallel), thread_name_prefix="backout-probe") as pool:
        answers = list(pool.map(lambda t: _probe_one(t, probe), targets))
    for target, answer in zip(targets, answers, strict=True):
        if isinstance(answer, BackoutError):
            raise type(answer)(
                f"target {target.name} ({target.origin}): {answer.message}; nothing was run "
                "on any target",
                hint=answer.hint,
            ) from answer
    return {i for i, answer in enumerate(answers) if answer is True}


def _probe_one(target: Target, probe: Probe) -> bool | BackoutError:
    try:
        return probe(target)
    except BackoutError as exc:
        return exc


@dataclass
class _Schedule:
    """The state of a run: what is left, what runs, what finished."""

    targets: Sequence[Target]
    run_one: Callable[[Target], Done]
    parallel: int
    keep_going: bool
    scope: Callable[[Target], Hashable] | None
    progress: Callable[[FleetProgress], None] | None
    stop: threading.Event
    results: dict[int, TargetResult] = field(default_factory=dict)
    running: dict[Future[TargetResult], int] = field(default_factory=dict)
    busy: set[Hashable] = field(default_factory=set)
    stopped: str = ""

    def run_phase(self, pool: ThreadPoolExecutor, phase: list[int]) -> None:
        """Run the targets of ``phase`` (indexes), ``parallel`` at a time, until done or
        stopped; returns when none of them runs any more."""
        pending = list(phase)
        while pending or self.running:
            if self.stop.is_set() and not self.stopped:
                self.stopped = "interrupted: no new target was started"
            if not self.stopped:
                self._start(pool, pending)
            if not self.running:
                return
            finished, _ = wait(list(self.running), timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                self._finish(future)

    def _start(self, pool: ThreadPoolExecutor, pending: list[int]) -> None:
        for index in list(pending):
            if len(self.running) >= self.parallel:
                return
            target = self.targets[index]
            scope = self.scope(target) if self.scope is not None else None
            if scope is not None and scope in self.busy:
                continue  # shares a run lock with a running target: after it
            pending.remove(index)
            if scope is not None:
                self.busy.add(scope)
            self.running[pool.submit(_run_target, target, self.run_one)] = index
            self._tell(None)

    def _finish(self, future: Future[TargetResult]) -> None:
        index = self.running.pop(future)
        result = future.result()
        self.results[index] = result
        if self.scope is not None:
            self.busy.discard(self.scope(result.target))
        if result.outcome == "failed" and not self.keep_going and not self.stopped:
            self.stopped = f"{result.target.name} failed: no new target was started"
        self._tell(result)

    def _tell(self, finished: TargetResult | None) -> None:
        if self.progress is None:
            return
        results = self.results.values()
        self.progress(
            FleetProgress(
                total=len(self.targets),
                done=sum(1 for r in results if r.outcome != "failed"),
                failed=sum(1 for r in results if r.outcome == "failed"),
                running=tuple(self.targets[i] for i in self.running.values()),
                finished=finished,
            )
        )


def run_fleet(
    targets: Sequence[Target],
    run_one: Callable[[Target], Done],
    *,
    parallel: int = 1,
    keep_going: bool = False,
    canary: int = 0,
    already_done: set[int] | None = None,
    scope: Callable[[Target], Hashable] | None = None,
    progress: Callable[[FleetProgress], None] | None = None,
    stop: threading.Event | None = None,
) -> FleetResult:
    """Run ``run_one`` on every target not ``already_done``, ``parallel`` at a time.

    ``canary``: the first K targets still to do run first, by themselves; the rest start
    only when every one of them succeeded. Without ``keep_going`` no target starts after
    one failed (those running finish). ``scope``: targets with the same scope never run at
    the same time (they share a run lock). ``stop`` set (Ctrl-C): no new target starts, the
    running ones finish.
    """
    started = dt.datetime.now(dt.UTC)
    skipped = already_done or set()
    schedule = _Schedule(
        targets, run_one, max(1, parallel), keep_going, scope, progress, stop or threading.Event()
    )
    for index in skipped:
        schedule.results[index] = TargetResult(
            targets[index], "already_done", detail="already there: not run"
        )
    todo = [i for i in range(len(targets)) if i not in skipped]
    phases = [todo[:canary], todo[canary:]] if canary > 0 else [todo]
    with ThreadPoolExecutor(schedule.parallel, thread_name_prefix="backout-fleet") as pool:
        for number, phase in enumerate(phases):
            if schedule.stopped:
                break
            schedule.run_phase(pool, phase)
            if number == 0 and len(phases) > 1 and not schedule.stopped:
                bad = [i for i in phase if schedule.results[i].outcome not in ("ok",)]
                if bad:
                    schedule.stopped = (
                        f"canary {targets[bad[0]].name} did not succeed: the other targets "
                        "were not started"
                    )
    results = [
        schedule.results.get(i) or TargetResult(targets[i], "not_run", detail=schedule.stopped)
        for i in range(len(targets))
    ]
    return FleetResult(results, started, dt.datetime.now(dt.UTC), schedule.stopped)


def _run_target(target: Target, run_one: Callable[[Target], Done]) -> TargetResult:
    """Run the command on one target (in a worker thread); its error is its result."""
    began = time.monotonic()
    try:
        done = run_one(target)
    except BackoutError as exc:
        return TargetResult(
            target, "failed", exc.exit_code, duration_s=time.monotonic() - began, error=exc
        )
    except Exception as exc:  # noqa: BLE001 - a bug: reported on its target; the others go on
        error = UnexpectedError(f"unexpected error: {type(exc).__name__}: {exc}")
        return TargetResult(target, "failed", 1, duration_s=time.monotonic() - began, error=error)
    return TargetResult(
        target,
        done.outcome,
        done.exit_code,
        detail=done.detail,
        backup=done.backup,
        duration_s=time.monotonic() - began,
    )
