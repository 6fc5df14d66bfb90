"""Crash lanes: kill -9 backout at random points and check what it leaves behind.

A lane is one database and one project, driven through a cycle of commands whose states are
known in advance::

    R --backup--> R --up--> A --partial--> A' --rollback--> R --(up)--> A --restore B_R--> R

(``R``: the migration under test not applied; ``A``: applied; ``A'``: applied, partial rollback
done; ``B_R``: the full backup taken in the cycle's first step; ``(up)`` is a plain transition,
not a trial.) Cycle 0 runs every command without a kill: it measures how long each one takes
and records the reference states. Every later step is a trial:

1. start ``python -m backout ...`` (a real process) and kill -9 it after a random delay: one
   trial in ten anywhere in Python's start-up (interpreter and imports, measured as the
   difference between ``backout status`` run as a process and in-process), the others uniform
   between the end of start-up and the command's measured duration, so that kills land in
   planning, backups, the open transaction and after COMMIT alike;
2. wait for the processes it leaves (an orphaned ``pg_dump`` finishes its file) and, on
   PostgreSQL, for the server to notice that its connections died;
3. check: schema and data equal exactly the state before or the state after; the ledger agrees
   with the schema and claims no failure; no event claims a success that did not happen; the
   run lock is free (no advisory lock left, or a new flock succeeds); the backup catalog is
   intact (every record's file has its size and sha256; modes 0600);
4. run the same command again. After a kill that left the state before, that re-run is the
   next trial (killed too, at a new random moment): up to MAX_CHAIN kills in a row. A chain
   ends with a run to completion (in-process), which must succeed and reach the state after:
   once a kill left the state after, after MAX_CHAIN kills, or at the quota. So every command
   is shown to succeed after one or several kills in a row, without paying a full run after
   every kill.

Run a lane by itself: ``python -m tests.reliability.crash SPEC.json RESULT.json`` (the crash
test writes the spec; see :class:`LaneSpec`).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.common import (
    Artifacts,
    Child,
    Outcome,
    State,
    check_backup_folder,
    cli,
    observe,
    pg_advisory_locks,
    spawn,
    sqlite_integrity,
    sqlite_lock_free,
    wait_backends_gone,
    wait_orphans,
)
from tests.reliability.projects import CrashProject, crash_project

COMMANDS = ("backup", "up", "partial", "rollback", "restore")
#: at most this many kills in a row before a run to completion
MAX_CHAIN = 4
#: the event each command writes when it succeeds
EVENT = {
    "backup": "backup",
    "up": "apply",
    "partial": "partial_rollback",
    "rollback": "rollback",
    "restore": "restore",
}


@dataclass
class LaneSpec:
    """One lane: a database, a project folder, its quota of trials, and its seed."""

    dialect: str
    url: str
    root: str
    artifacts: str
    #: trials per command in this lane
    quota: int
    seed: int
    lane: int
    #: every n-th rollback trial runs with the plan's simulation (scratch database) on
    simulate_every: int = 10
    #: ``kill`` (kill -9 the process) or ``cut`` (cut its database: pg_terminate_backend on
    #: PostgreSQL; on SQLite, fill the volume holding the database file)
    mode: str = "kill"
    #: SQLite ``cut`` mode: the tmpfs the database lives on, filled at the cut
    volume: str = ""


@dataclass
class Trial:
    """One kill and what was found afterwards."""

    lane: int
    cycle: int
    command: str
    delay: float
    killed: bool
    exit_code: int | None
    phase: str
    outcome: str
    orphans: int = 0
    backend_wait: float = 0.0
    stray_files: int = 0
    event_without_state: bool = False
    state_without_event: bool = False
    run_seconds: float = 0.0
    check_seconds: float = 0.0
    rerun_seconds: float = 0.0
    #: what ran the command again after this trial: "the next trial" or "completed"
    rerun: str = ""
    #: cut mode: the first error line, and whether the cut landed while the run was going on
    error_line: str = ""
    cut_landed: bool = False
    #: cut mode: the failure was recorded as a failed migration; resolved before the re-run
    resolved: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass
class LaneResult:
    """Everything a lane did."""

    spec: dict[str, Any]
    calibration: dict[str, float]
    trials: list[Trial]
    seconds: float
    setup_problems: list[str] = field(default_factory=list)


_ID = re.compile(r"\S*\d{8}\S*")
#: the final lines of each command's output
_SUMMARY = re.compile(
    r"^(Applied \d|Nothing to apply|Rolled back \d|Partial rollback \S+ of \S+: \d|"
    r"Backup \S+ \(|Restored )",
    re.M,
)


def phase_of(command: str, outcome: Outcome) -> str:
    """Where the run was when it died, from the progress it had printed."""
    if not outcome.killed:
        return "finished before the kill"
    if _SUMMARY.search(outcome.stdout):
        return "printing the summary"
    if command == "up":
        if "... ok" in outcome.stdout:
            return "after COMMIT"
        if "Applying" in outcome.stdout:
            return "in the transaction"
        return "start-up and planning"
    progress = [line for line in outcome.stderr.splitlines() if line.startswith("… ")]
    if progress:
        text = _ID.sub("<id>", progress[-1][2:]).strip()
        if text.startswith(("rolling back", "restoring <id> in one transaction")):
            return "in the transaction (" + text.split(" <id>")[0] + ")"
        return text
    if outcome.stdout.strip():
        return "plan printed"
    return "start-up and planning"


class Lane:
    """Drives one database through the cycle; see the module docstring."""

    def __init__(self, spec: LaneSpec) -> None:
        self.spec = spec
        self.rng = random.Random(f"{spec.seed}:{spec.dialect}:{spec.lane}")
        self.artifacts = Artifacts(Path(spec.artifacts))
        self.project: CrashProject = crash_project(Path(spec.root), spec.dialect)
        self.url = spec.url
        self.db_path: Path | None = None
        self.monitor: Any = None
        if spec.dialect == "sqlite":
            self.db_path = Path(spec.url.removeprefix("sqlite:///"))
        else:
            from tests.reliability.common import pg_connect

            # One connection for every check: it holds no lock (autocommit, idle).
            self.monitor = pg_connect(spec.url, application_name="reliability-monitor")
        self.refs: dict[str, tuple[Any, ...]] = {}
        self.calibration: dict[str, float] = {}
        self.durations: dict[str, list[float]] = {}
        self.attempts: dict[str, int] = {}
        self.startup = 0.0
        self.backup_r = ""
        self.rollbacks = 0
        self.trials: list[Trial] = []
        self.setup_problems: list[str] = []

    # --- commands --------------------------------------------------------------------------

    def args(self, command: str) -> list[str]:
        """The command line of ``command`` in this lane."""
        p = self.project
        if command == "up":
            return ["up"]
        if command == "backup":
            return ["backup", "--full"]
        if command == "partial":
            return ["rollback", p.change, "--partial", p.partial, "--param", "v=1", "--yes"]
        if command == "rollback":
            self.rollbacks += 1
            simulate = self.rollbacks % self.spec.simulate_every == 0
            return [
                "rollback",
                "--to",
                p.base,
                "--yes",
                "--simulate" if simulate else "--no-simulate",
            ]
        return ["restore", self.backup_r, "--yes"]

    def observe(self) -> State:
        """The database now."""
        return observe(self.url, prisma=self.project.prisma, conn=self.monitor)

    def run_clean(self, command: str, label: str) -> tuple[Outcome, State]:
        """Run in-process to completion; (outcome, state afterwards)."""
        outcome = cli(
            self.args(command),
            project=self.project.root,
            url=self.url,
            artifacts=self.artifacts,
            label=label,
        )
        if command == "backup" and outcome.exit_code == 0:
            self.backup_r = _backup_id(outcome.stdout)
        return outcome, self.observe()

    # --- the lane --------------------------------------------------------------------------

    def setup(self) -> State:
        """Base migration applied, cycle 0 run without kills: calibration and references."""
        outcome, r = self.run_clean_base()
        if outcome.exit_code != 0:
            raise RuntimeError("setup failed: " + outcome.describe())
        self.refs["R"] = r.shape
        self.startup = self.measure_startup()
        self.calibration["start-up"] = self.startup
        expected = {"backup": "R", "up": "A", "partial": "A'", "rollback": "R", "restore": "R"}
        state = r
        for command in ("backup", "up", "partial", "rollback", "transition", "restore"):
            if command == "transition":
                outcome, state = self.run_clean("up", "c0-transition-up")
                continue
            child = spawn(
                self.args(command),
                project=self.project.root,
                url=self.url,
                artifacts=self.artifacts,
                label=f"c0-{command}",
            )
            result = child.wait(timeout=300)
            if result.exit_code != 0:
                raise RuntimeError(f"calibration run of {command} failed: " + result.describe())
            self.calibration[command] = result.duration
            if command == "backup":
                self.backup_r = _backup_id(result.stdout)
            state = self.observe()
            name = expected[command]
            if name in self.refs and self.refs[name] != state.shape:
                self.setup_problems.append(
                    f"calibration: after {command} the state is not {name} as before"
                )
            self.refs.setdefault(name, state.shape)
        return state

    def measure_startup(self) -> float:
        """Seconds a backout process spends before it does anything: the same cheap command
        (``status``) as a process minus in-process, best of three."""
        best = 10.0
        for attempt in range(3):
            child = spawn(
                ["status"],
                project=self.project.root,
                url=self.url,
                artifacts=self.artifacts,
                label=f"startup-{attempt}",
            )
            spawned = child.wait(timeout=120)
            inline = cli(
                ["status"],
                project=self.project.root,
                url=self.url,
                artifacts=self.artifacts,
                label=f"startup-inline-{attempt}",
            )
            best = min(best, max(0.0, spawned.duration - inline.duration))
        return best

    def expected(self, command: str) -> float:
        """How long a run of ``command`` takes now: the shortest of the last five that ran to
        the end as processes (calibration, and trials that finished before their kill), so
        that few kills arrive after the run is over (the machine's load varies)."""
        recent = self.durations.setdefault(command, [self.calibration[command]])[-5:]
        return min(recent)

    def kill_delay(self, command: str) -> float:
        """When to kill: see the module docstring."""
        total = self.expected(command)
        startup = min(self.startup, total * 0.8)
        if self.spec.mode == "kill" and self.rng.random() < 0.1:
            return self.rng.uniform(0.0, startup)
        return self.rng.uniform(startup, total)

    def run_clean_base(self) -> tuple[Outcome, State]:
        """``up --to <base>`` in-process."""
        outcome = cli(
            ["up", "--to", self.project.base],
            project=self.project.root,
            url=self.url,
            artifacts=self.artifacts,
            label="setup-up-base",
        )
        return outcome, self.observe()

    def run(self) -> LaneResult:
        """Setup, then cycles of chains until every command has its quota of trials."""
        started = time.monotonic()
        state = self.setup()
        steps = [
            ("backup", "R"),
            ("up", "A"),
            ("partial", "A'"),
            ("rollback", "R"),
            ("transition", "A"),
            ("restore", "R"),
        ]
        quota = self.spec.quota
        counts = dict.fromkeys(COMMANDS, 0)
        current = "R"
        cycle = 0
        while any(n < quota for n in counts.values()):
            cycle += 1
            for command, after_name in steps:
                if command == "transition" or counts[command] >= quota:
                    if command in ("backup", "partial") and counts[command] >= quota:
                        continue  # no state change needed to go on
                    what = "up" if command == "transition" else command
                    outcome, state = self.run_clean(what, f"c{cycle}-{command}-plain")
                    if outcome.exit_code != 0 or state.shape != self.refs[after_name]:
                        self.setup_problems.append(
                            f"cycle {cycle}: plain {what} failed: {outcome.describe()}"
                        )
                        return self.result(started)
                else:
                    state = self.chain(cycle, command, state, current, after_name, counts)
                current = after_name
        return self.result(started)

    def chain(
        self,
        cycle: int,
        command: str,
        state: State,
        before_name: str,
        after_name: str,
        counts: dict[str, int],
    ) -> State:
        """Trials of ``command`` in a row: after a kill that left the state before, the re-run
        is the next trial (killed too); a chain ends with a run to completion, which must
        succeed, once a kill left the state after, after MAX_CHAIN kills, or at the quota."""
        length = 0
        while True:
            length += 1
            middle, trial = self.trial(cycle, command, state, before_name, after_name)
            # Only a kill (or a cut) that landed while the run was going on counts.
            if trial.killed:
                counts[command] += 1
            elif trial.exit_code == 0:
                self.durations.setdefault(command, []).append(trial.run_seconds)
            attempts = self.attempts[command] = self.attempts.get(command, 0) + 1
            if attempts > 4 * self.spec.quota:
                counts[command] = self.spec.quota  # give up on this command; reported short
            done = (
                trial.outcome != "before"
                or not trial.killed
                or length >= MAX_CHAIN
                or counts[command] >= self.spec.quota
                or self.spec.mode == "cut"
            )
            if not done:
                trial.rerun = "the next trial"
                state = middle
                continue
            if not trial.killed and trial.exit_code == 0 and trial.outcome == "after":
                # The kill came too late: this run went to the end and succeeded, which is
                # the run to completion the chain needs.
                trial.rerun = "completed"
                return middle
            return self.complete(command, trial, after_name, f"c{cycle}-{command}")

    def complete(self, command: str, trial: Trial, after_name: str, label: str) -> State:
        """Run ``command`` again to the end: it must succeed and reach the state after."""
        rerun, after = self.run_clean(command, f"{label}-rerun")
        trial.rerun = "completed"
        trial.rerun_seconds = round(rerun.duration, 3)
        if rerun.exit_code != 0:
            trial.problems.append("re-running it failed: " + rerun.describe())
        elif after.shape != self.refs[after_name]:
            trial.problems.append(f"after the re-run the state is not {after_name}")
        if after.failed_rows:
            trial.problems.append("after the re-run the ledger holds a failed attempt")
        return after

    def result(self, started: float) -> LaneResult:
        """The lane's record."""
        from backout.model.urls import mask_url

        return LaneResult(
            spec={**asdict(self.spec), "url": mask_url(self.spec.url)},
            calibration=self.calibration,
            trials=self.trials,
            seconds=time.monotonic() - started,
            setup_problems=self.setup_problems,
        )

    # --- one trial -------------------------------------------------------------------------

    def trial(
        self, cycle: int, command: str, before: State, before_name: str, after_name: str
    ) -> tuple[State, Trial]:
        """Kill (or cut) one run of ``command`` at a random moment and check what it left."""
        problems: list[str] = []
        if before.shape != self.refs[before_name]:
            problems.append(f"the state before the trial is not {before_name}")
        catalog_before = check_backup_folder(self.project.backups).records
        delay = self.kill_delay(command)
        label = f"c{cycle}-{command}"
        child = spawn(
            self.args(command),
            project=self.project.root,
            url=self.url,
            artifacts=self.artifacts,
            label=label,
        )
        if self.spec.mode == "cut":
            outcome, landed = self.cut(child, delay)
        else:
            outcome, landed = child.wait(timeout=delay), False
        checks_started = time.monotonic()
        trial = Trial(
            lane=self.spec.lane,
            cycle=cycle,
            command=command,
            delay=round(delay, 4),
            killed=outcome.killed,
            exit_code=outcome.exit_code,
            phase=phase_of(command, outcome),
            outcome="?",
            problems=problems,
            run_seconds=round(outcome.duration, 3),
        )
        self.trials.append(trial)
        if self.spec.mode == "cut":
            self.check_cut(trial, outcome, landed)
        elif not outcome.killed and outcome.exit_code != 0:
            problems.append("the run finished before the kill but failed: " + outcome.describe())
        try:
            trial.orphans = wait_orphans(child.pid)
        except TimeoutError as exc:
            problems.append(str(exc))
        self.check_locks(trial, child.pid)
        middle = self.observe()
        catalog = check_backup_folder(self.project.backups)
        trial.stray_files = len(catalog.stray_files)
        problems.extend(f"backup folder: {p}" for p in catalog.problems)
        new_backup = catalog.records > catalog_before
        trial.outcome = self.classify(command, before, middle, before_name, after_name, new_backup)
        if trial.outcome == "in between":
            problems.append(
                f"the state is neither {before_name} nor {after_name}: {_diff(self.refs, middle)}"
            )
        self.check_history(trial, command, before, middle, new_backup)
        trial.check_seconds = round(time.monotonic() - checks_started, 3)
        if middle.failed_rows and self.spec.mode == "cut":
            # A statement failed (the cut) and up recorded the migration failed, as Prisma
            # does; the documented way on is `resolve --rolled-back` (the change was undone).
            trial.resolved = True
            resolve = cli(
                ["resolve", self.project.change, "--rolled-back"],
                project=self.project.root,
                url=self.url,
                artifacts=self.artifacts,
                label=f"{label}-resolve",
            )
            if resolve.exit_code != 0:
                problems.append("resolve --rolled-back failed: " + resolve.describe())
        if middle.failed_rows and trial.resolved:
            middle = self.observe()
        return middle, trial

    # --- cutting the database instead of killing ----------------------------------------------

    def cut(self, child: Child, delay: float) -> tuple[Outcome, bool]:
        """Cut the run's database at ``delay``; wait for the run to end by itself."""
        if self.db_path is None:
            landed = self.terminate_backends(child, delay)
        else:
            landed = self.fill_volume(child, delay)
        outcome = child.wait(timeout=300)
        if self.db_path is not None:
            (Path(self.spec.volume) / "filler").unlink(missing_ok=True)
        if outcome.killed:
            outcome.stderr += "\n(the run did not end within 300 s after the cut: killed)"
        # phase_of reads "killed" as "interrupted": the cut is the interruption here
        outcome.killed = landed
        return outcome, landed

    def terminate_backends(self, child: Child, delay: float) -> bool:
        """pg_terminate_backend on every connection of the run, ``delay`` s after start-up."""
        deadline = child.started + delay
        while child.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        # At that moment, or at the next moment the run has a connection open.
        while child.proc.poll() is None:
            rows = self.monitor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE %s",
                (f"backout/% pid {child.pid}",),
            ).fetchall()
            if any(r[0] for r in rows):
                return child.proc.poll() is None
            time.sleep(0.002)
        return False

    def fill_volume(self, child: Child, delay: float) -> bool:
        """Fill the tmpfs holding the SQLite file, as another process writing logs would."""
        try:
            child.proc.wait(timeout=max(0.0, child.started + delay - time.monotonic()))
            return False
        except subprocess.TimeoutExpired:
            pass
        chunk = b"\0" * (1 << 16)
        handle = os.open(Path(self.spec.volume) / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(handle, chunk) > 0:
                pass
        except OSError:
            pass  # full: what we wanted
        finally:
            os.close(handle)
        return child.proc.poll() is None

    def check_cut(self, trial: Trial, outcome: Outcome, landed: bool) -> None:
        """A cut run fails with one clear error line and exit 4 (or finished before it)."""
        trial.cut_landed = landed
        errors = outcome.error_lines
        trial.error_line = errors[0][:300] if errors else ""
        if "Traceback" in outcome.stderr:
            trial.problems.append("a traceback instead of an error line: " + outcome.describe())
        if outcome.exit_code == 0:
            return
        if len(errors) != 1:
            trial.problems.append(f"{len(errors)} error lines: " + outcome.describe())
        if outcome.exit_code != 4:
            trial.problems.append(
                f"exit {outcome.exit_code}, expected 4 after a cut connection: {trial.error_line}"
            )

    def check_locks(self, trial: Trial, pid: int) -> None:
        """No run lock may outlive the killed process."""
        if self.db_path is None:
            try:
                trial.backend_wait = round(wait_backends_gone(self.monitor, pid), 3)
            except TimeoutError as exc:
                trial.problems.append(str(exc))
            held = pg_advisory_locks(self.monitor)
            if held:
                trial.problems.append(f"advisory locks still held after the kill: {held}")
        else:
            if not sqlite_lock_free(self.db_path):
                trial.problems.append("the SQLite run lock file is still locked after the kill")
            integrity = sqlite_integrity(self.db_path)
            if integrity != "ok":
                trial.problems.append(f"PRAGMA integrity_check after the kill: {integrity}")

    def classify(
        self,
        command: str,
        before: State,
        middle: State,
        before_name: str,
        after_name: str,
        new_backup: bool,
    ) -> str:
        """before / after / in between."""
        if command == "backup":
            if middle.shape != self.refs["R"]:
                return "in between"
            return "after" if new_backup else "before"
        if middle.shape == self.refs[after_name]:
            return "after"
        if middle.shape == self.refs[before_name]:
            return "before"
        return "in between"

    def check_history(
        self, trial: Trial, command: str, before: State, middle: State, new_backup: bool
    ) -> None:
        """The ledger agrees with the schema; events never claim what did not happen."""
        key = self.project.change_key
        applied = middle.status(key) == "applied"
        schema_applied = middle.schema in {self.refs["A"][0], self.refs["A'"][0]}
        if applied != schema_applied:
            trial.problems.append(
                f"ledger says {middle.status(key)!r} but the schema is "
                f"{'applied' if schema_applied else 'not applied'}"
            )
        if middle.failed_rows and not (self.spec.mode == "cut" and trial.exit_code == 4):
            trial.problems.append(f"the ledger claims {middle.failed_rows} failed attempt(s)")
        if (
            self.spec.mode == "cut"
            and trial.exit_code not in (0, None)
            and reached_after(trial, command)
        ):
            trial.problems.append(
                f"exit {trial.exit_code} (a failure) although the change was committed"
            )
        last = before.events[-1][0] if before.events else 0
        new = [e for e in middle.events if e[0] > last]
        reached = trial.outcome == "after"
        for _, event, outcome, _, backup in new:
            if outcome != "ok":
                if self.spec.mode == "kill" or trial.exit_code == 0:
                    trial.problems.append(
                        f"a {self.spec.mode} run that did not report a failure recorded a "
                        f"{outcome!r} {event} event"
                    )
            elif event != EVENT[command] and not (event == "backup" and command == "backup"):
                trial.problems.append(f"unexpected {event} event from a {command} run")
            elif not reached:
                trial.event_without_state = True
                trial.problems.append(f"an ok {event} event but the state after was not reached")
            elif command == "backup" and not new_backup:
                trial.problems.append(f"a backup event names {backup}, which is not catalogued")
        if reached and not any(e[1] == EVENT[command] and e[2] == "ok" for e in new):
            trial.state_without_event = True


def reached_after(trial: Trial, command: str) -> bool:
    """The change of a transactional command was committed (a backup is not one)."""
    return command != "backup" and trial.outcome == "after"


def _backup_id(stdout: str) -> str:
    match = re.search(r"^Backup (\S+) \(", stdout, re.M)
    if match is None:
        raise RuntimeError(f"no backup id in: {stdout[-500:]}")
    return match[1]


def _diff(refs: dict[str, tuple[Any, ...]], state: State) -> str:
    parts = []
    for name, (schema, data) in refs.items():
        same_schema = schema == state.schema
        tables = {t: (c, s) for t, c, s in data}
        now = {t: (c, s) for t, c, s in state.data}
        changed = sorted(t for t in set(tables) | set(now) if tables.get(t) != now.get(t))
        parts.append(f"vs {name}: schema {'same' if same_schema else 'differs'}, data {changed}")
    return "; ".join(parts)


def run_lane(spec: LaneSpec) -> LaneResult:
    """Run one lane to the end."""
    lane = Lane(spec)
    try:
        return lane.run()
    finally:
        if lane.monitor is not None:
            lane.monitor.close()


def main(argv: list[str]) -> int:
    """``python -m tests.reliability.crash SPEC.json RESULT.json``.

    The database URL may carry a password: it comes from ``BACKOUT_LANE_URL`` when set, so
    that no file holds it (the secrets scan reads every file the suite writes).
    """
    data = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    data["url"] = os.environ.get("BACKOUT_LANE_URL") or data["url"]
    spec = LaneSpec(**data)
    result = run_lane(spec)
    Path(argv[1]).write_text(json.dumps(asdict(result), indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
