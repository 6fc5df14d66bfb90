"""SIGTERM after a rollback's COMMIT (backout.model.interrupts): the change is complete, so
backout neither claims to have stopped it nor records it as failed; it finishes the command and
then ends by the signal, saying so.

The ``after_rollback`` hook runs after COMMIT: it marks that it started, then sleeps, and the
signal is sent while it sleeps.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backout.model import interrupts
from backout.model.errors import Terminated
from tests.helpers import run, sql, write


def _project(root: Path, marker: Path) -> Path:
    return write(
        root,
        {
            "backout.toml": (
                f'layout = "plain"\n[hooks]\nafter_rollback = "touch \'{marker}\'; sleep 2"\n'
            ),
            "migrations/001_items.up.sql": "CREATE TABLE items (id INTEGER PRIMARY KEY);\n",
            "migrations/001_items.down.sql": "DROP TABLE items;\n",
        },
    )


def test_sigterm_after_the_commit_leaves_the_rollback_done_and_says_so(tmp_path: Path) -> None:
    marker = tmp_path / "hook-started"
    project = _project(tmp_path / "p", marker)
    url = f"sqlite:///{tmp_path / 'app.db'}"
    assert run(["up"], project=project, url=url).exit_code == 0
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backout",
            "rollback",
            "--yes",
            "--backup",
            "none",
            "--i-accept-data-loss",
            "-C",
            str(project),
            "--url",
            url,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    # ended by the signal once the command was done, not "terminated ... rolled back" (143)
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, err)
    assert "after the change had been committed: the change is complete" in err
    assert "Traceback" not in err
    tables = sql(url, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'items'")
    assert tables == []  # rolled back
    events = sql(url, "SELECT event, outcome FROM backout_events ORDER BY id")
    assert events[-1] == ("rollback", "ok") and ("rollback", "failed") not in events


def test_a_held_signal_is_raised_where_the_next_transaction_begins() -> None:
    interrupts.reset()
    with interrupts.committing():
        assert interrupts.holding()
        interrupts.hold()  # what the command line's handler does while holding
    assert interrupts.pending()
    with pytest.raises(Terminated):
        interrupts.beginning()
    assert not interrupts.pending() and not interrupts.holding()


def test_a_commit_that_fails_raises_the_held_signal_at_once() -> None:
    interrupts.reset()
    with pytest.raises(Terminated), interrupts.committing():
        interrupts.hold()
        raise RuntimeError("the COMMIT failed: the transaction is undone")
    assert not interrupts.pending() and not interrupts.holding()
    interrupts.beginning()  # nothing held: no exception


def test_nothing_is_held_outside_a_commit() -> None:
    interrupts.reset()
    assert not interrupts.holding()
    interrupts.beginning()
    assert not interrupts.pending()
