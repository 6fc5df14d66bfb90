"""The fleet's scheduling (backout.fleet.run), with a fake command: parallelism, targets that
share a run lock never overlapping, the stop at the first failure, the canary, Ctrl-C."""

from __future__ import annotations

import threading
import time

from backout.cli.fleet import _message, _Stop
from backout.dialects.pool import ConnectionPool
from backout.fleet.run import Done, run_fleet
from backout.fleet.targets import Target
from backout.model.errors import DatabaseError


def targets(count: int) -> list[Target]:
    return [Target(f"sqlite:///t{i}.db", f"targets.txt:{i + 1}") for i in range(count)]


class Fake:
    """A command that sleeps a little, fails on chosen targets, and records overlaps."""

    def __init__(self, failing: frozenset[int] = frozenset(), pause: float = 0.02) -> None:
        self.failing = failing
        self.pause = pause
        self.lock = threading.Lock()
        self.running: list[str] = []
        self.most = 0
        self.started: list[int] = []
        self.overlap: list[tuple[str, str]] = []

    def __call__(self, target: Target) -> Done:
        index = int(target.origin.rsplit(":", 1)[1]) - 1
        with self.lock:
            self.started.append(index)
            self.overlap += [(other, target.url) for other in self.running]
            self.running.append(target.url)
            self.most = max(self.most, len(self.running))
        time.sleep(self.pause)
        with self.lock:
            self.running.remove(target.url)
        if index in self.failing:
            raise DatabaseError(f"boom on {index}")
        return Done("ok", f"did {index}")


def test_parallel_runs_that_many_at_a_time_and_keeps_the_files_order() -> None:
    fake = Fake()
    result = run_fleet(targets(12), fake, parallel=4)
    assert [r.outcome for r in result.results] == ["ok"] * 12
    assert [r.detail for r in result.results] == [f"did {i}" for i in range(12)]
    assert fake.most == 4 and result.exit_code == 0


def test_targets_sharing_a_scope_never_run_at_once() -> None:
    fake = Fake()
    run_fleet(targets(8), fake, parallel=8, scope=lambda t: int(t.url[-4]) % 2)
    assert fake.most == 2 and not [
        pair for pair in fake.overlap if int(pair[0][-4]) % 2 == int(pair[1][-4]) % 2
    ]


def test_the_first_failure_stops_new_starts_unless_keep_going() -> None:
    stopped = run_fleet(targets(6), Fake(failing=frozenset({2})), parallel=1)
    assert [r.outcome for r in stopped.results] == ["ok", "ok", "failed"] + ["not_run"] * 3
    assert stopped.results[2].exit_code == 4 and stopped.exit_code == 7
    going = run_fleet(targets(6), Fake(failing=frozenset({2})), parallel=1, keep_going=True)
    assert [r.outcome for r in going.results] == ["ok", "ok", "failed", "ok", "ok", "ok"]


def test_the_canary_runs_alone_first_and_a_failed_one_stops_the_rest() -> None:
    fake = Fake()
    run_fleet(targets(6), fake, parallel=4, canary=2, already_done={0})
    assert sorted(fake.started[:2]) == [1, 2] and 0 not in fake.started
    bad = run_fleet(targets(6), Fake(failing=frozenset({1})), parallel=4, canary=2, keep_going=True)
    assert [r.outcome for r in bad.results] == ["ok", "failed"] + ["not_run"] * 4
    assert "canary" in bad.stopped


def test_a_stop_request_starts_nothing_new() -> None:
    stop = threading.Event()
    fake = Fake(pause=0.05)

    def progress(_: object) -> None:
        if len(fake.started) >= 2:
            stop.set()

    result = run_fleet(targets(8), fake, parallel=2, progress=progress, stop=stop)
    assert len(fake.started) == 2
    assert [r.outcome for r in result.results] == ["ok", "ok"] + ["not_run"] * 6
    assert result.stopped.startswith("interrupted")


def test_the_connection_pool_keeps_few_idle_connections() -> None:
    closed: list[str] = []
    pool = ConnectionPool(max_idle=2)
    for name in ("a1", "b1", "c1"):
        pool.give_back(name[0], name, closed.append)
    assert closed == ["a1"]  # the oldest goes: at most 2 stay open
    assert pool.take("a") is None and pool.take("b") == "b1" and pool.take("b") is None
    pool.close()
    assert closed == ["a1", "c1"]


def test_a_target_failed_without_an_error_is_told_by_its_detail() -> None:
    """A rollback committed whose after-hook failed: the target failed, with no exception;
    the fleet's message names what happened, not "None"."""

    def one(target: Target) -> Done:
        return Done("failed", "hook notify failed; the rollback itself is committed", None, 1)

    result = run_fleet(targets(2), one, keep_going=True)
    message = _message(result, _Stop())
    assert "None" not in message
    assert "t0.db: hook notify failed; the rollback itself is committed" in message
