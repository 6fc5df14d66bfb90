"""The pause between lock-timeout retries: exponential, jittered, capped, >= lock_timeout."""

from __future__ import annotations

from backout.run.runner import RunOptions


def test_the_pause_is_never_shorter_than_the_lock_timeout() -> None:
    # An attempt holds the application up to lock_timeout: the pause gives it as long again.
    options = RunOptions(lock_timeout=2.0)
    assert all(options.pause(0.5) == 2.0 for _ in range(200))
    assert all(2.0 <= options.pause(8.0) <= 8.0 for _ in range(200))


def test_a_short_lock_timeout_keeps_the_exponential_jittered_backoff() -> None:
    options = RunOptions(lock_timeout=0.1)
    pauses = [options.pause(0.5) for _ in range(500)]
    assert min(pauses) >= 0.25 and max(pauses) <= 0.5
    assert len({round(p, 3) for p in pauses}) > 10  # jittered, not a fixed step
    assert all(5.0 <= options.pause(1000.0) <= 10.0 for _ in range(200))  # capped at 10 s


def test_a_database_that_rounds_the_lock_timeout_pauses_as_long_as_it_really_waits() -> None:
    from backout.dialects.mysql.dialect import MysqlDialect

    # MySQL waits whole seconds: 0.5 s means an attempt can hold the application for 1 s.
    wait = MysqlDialect().lock_wait(0.5)
    assert wait == 1.0
    options = RunOptions(lock_timeout=0.5, lock_wait=wait)
    assert all(options.pause(0.5) == 1.0 for _ in range(100))
