"""Scratch database names: who made one, and when one is certainly abandoned (issue 12)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from backout.dialects import scratch_names
from backout.model.errors import ConfigError


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_new_name_records_this_host_this_process_and_now() -> None:
    name = scratch_names.new_name("team_a_")
    owner = scratch_names.owner_of(name, "team_a_")
    assert owner is not None
    assert owner.host == scratch_names._host_tag()
    assert owner.pid == os.getpid()
    assert abs(owner.created - time.time()) < 5
    assert len(name) <= 63  # PostgreSQL's limit (MySQL's is 64)
    assert scratch_names.owner_of(name, "team_b_") is None


@pytest.mark.parametrize(
    ("case", "abandoned"),
    [
        ("dead pid here", True),
        ("dead pid here, connected", False),
        ("live pid here", False),
        ("other host", False),
        ("other host, two days old", True),
        ("other host, two days old, connected", False),
        ("old-style name", False),
        ("another prefix", False),
    ],
)
def test_only_certainly_abandoned_ones_are_swept(case: str, abandoned: bool) -> None:
    here = scratch_names._host_tag()
    now = int(time.time())
    names = {
        "dead pid here": (f"backout_scratch_{here}_{_dead_pid()}_{now}_abcdef", 0),
        "dead pid here, connected": (f"backout_scratch_{here}_{_dead_pid()}_{now}_abcdef", 1),
        "live pid here": (f"backout_scratch_{here}_{os.getpid()}_{now}_abcdef", 0),
        "other host": (f"backout_scratch_0badc0de_{_dead_pid()}_{now}_abcdef", 0),
        "other host, two days old": (f"backout_scratch_0badc0de_1_{now - 172800}_abcdef", 0),
        "other host, two days old, connected": (
            f"backout_scratch_0badc0de_1_{now - 172800}_abcdef",
            3,
        ),
        "old-style name": ("backout_scratch_0123456789ab", 0),
        "another prefix": (f"other_scratch_{here}_{_dead_pid()}_{now}_abcdef", 0),
    }
    name, connections = names[case]
    dropped: list[str] = []
    assert scratch_names.sweep([(name, connections)], dropped.append) == dropped
    assert (dropped == [name]) is abandoned


@pytest.mark.parametrize("prefix", ["", "Bad", "a-b_", "x" * 25, "1abc_", "a b"])
def test_a_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigError, match="scratch_prefix"):
        scratch_names.check_prefix(prefix, "backout.toml")


def test_a_process_in_another_pid_namespace_is_not_taken_for_a_dead_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two containers with the same host name (``--network host``, ``--uts host``) cannot see
    each other's processes: a scratch database of the other one must not look abandoned here
    (its owner only looks dead), even with no session connected at that moment."""
    monkeypatch.setattr(scratch_names, "_pid_namespace", lambda: "pid:[4026530000]")
    theirs = scratch_names.new_name()
    monkeypatch.undo()
    owner = scratch_names.owner_of(theirs)
    assert owner is not None
    # their pid, as seen from here: no such process
    invisible = theirs.replace(f"_{owner.pid}_", f"_{_dead_pid()}_", 1)
    assert not scratch_names.abandoned(invisible, 0)
    assert scratch_names.abandoned(
        scratch_names.new_name().replace(f"_{os.getpid()}_", f"_{_dead_pid()}_", 1), 0
    )


@pytest.mark.parametrize(
    ("case", "abandoned"),
    [
        ("dead pid here, idle 1 minute", False),
        ("dead pid here, idle 20 minutes", True),
        ("dead pid here, idle 20 minutes, connected", False),
        ("live pid here, idle 20 minutes", False),
        ("other host, idle 20 minutes", False),
        ("other host, two days old", True),
    ],
)
def test_a_kept_copy_is_swept_once_idle_long_enough(case: str, abandoned: bool) -> None:
    """A kept simulation copy outlives its run (issue 14); the sweep drops it once it has been
    idle for KEPT_IDLE_S, by the same owner rules as any scratch database."""
    here = scratch_names._host_tag()
    now = int(time.time())
    idle = now - scratch_names.KEPT_IDLE_S - 300
    names = {
        "dead pid here, idle 1 minute": (
            f"backout_scratch_{here}_{_dead_pid()}_{now - 60}_abc123",
            0,
        ),
        "dead pid here, idle 20 minutes": (
            f"backout_scratch_{here}_{_dead_pid()}_{idle}_abc123",
            0,
        ),
        "dead pid here, idle 20 minutes, connected": (
            f"backout_scratch_{here}_{_dead_pid()}_{idle}_abc123",
            1,
        ),
        "live pid here, idle 20 minutes": (
            f"backout_scratch_{here}_{os.getppid()}_{idle}_abc123",
            0,
        ),
        "other host, idle 20 minutes": (f"backout_scratch_0badc0de_{_dead_pid()}_{idle}_abc123", 0),
        "other host, two days old": (f"backout_scratch_0badc0de_1_{now - 172800}_abc123", 0),
    }
    name, connections = names[case]
    dropped: list[str] = []
    scratch_names.sweep([(name, connections)], dropped.append, kept={name})
    assert (dropped == [name]) is abandoned
    # not a kept copy: the grace does not apply
    if case == "dead pid here, idle 1 minute":
        assert scratch_names.sweep([(name, connections)], list().append) == [name]


def test_only_a_copy_of_a_gone_process_here_or_of_this_one_is_claimable() -> None:
    here = scratch_names._host_tag()
    now = int(time.time())
    assert scratch_names.claimable(f"backout_scratch_{here}_{_dead_pid()}_{now}_abc123", 0)
    assert scratch_names.claimable(scratch_names.new_name(), 0)  # this process's own
    assert not scratch_names.claimable(scratch_names.new_name(), 1)  # someone is connected
    assert not scratch_names.claimable(f"backout_scratch_{here}_{os.getppid()}_{now}_abc123", 0)
    assert not scratch_names.claimable(f"backout_scratch_0badc0de_{_dead_pid()}_{now}_abc123", 0)
    assert not scratch_names.claimable("backout_scratch_0123456789ab", 0)
    assert not scratch_names.claimable(scratch_names.new_name("other_"), 0)
