"""Lane "SIGTERM": ``kill`` (SIGTERM) backout at random moments of ``up`` and ``rollback``.

What systemd and container runtimes send before SIGKILL. Each trial alternates ``up`` and
``rollback`` of one migration on PostgreSQL (a terminated one is then run to completion) and
sends SIGTERM after a random delay (uniform over the command's measured duration). Afterwards:

- exit 0: the change is complete (state after), with its ok event;
- exit 143: the state before, exactly; one ``error: terminated by SIGTERM`` line, no traceback;
  a failed event of that command when the run had got as far as its transaction;
- killed by the signal itself (-15): during Python's start-up, before backout installs its
  handler (the state before, and no event at all), or as the process exits after the command
  returned (the state after, its ok event written).

SIGTERM_TRIALS trials (default 6; BACKOUT_SIGTERM_TRIALS).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import db_state, sql, write
from tests.reliability.common import base_env, master_seed, record_result

pytestmark = pytest.mark.postgres

SIGTERM_TRIALS = int(os.environ.get("BACKOUT_SIGTERM_TRIALS", "6"))

FILES = {
    "migrations/001_items.up.sql": "CREATE TABLE items (id int PRIMARY KEY, n int);\n"
    "INSERT INTO items SELECT g, g FROM generate_series(1, 20000) g;\n",
    "migrations/001_items.down.sql": "DROP TABLE items;\n",
    # a second in each transaction, so that some signals land inside it
    "migrations/002_more.up.sql": "ALTER TABLE items ADD COLUMN m int;\n"
    "UPDATE items SET m = n * 2;\nSELECT pg_sleep(1);\nCREATE INDEX items_m ON items (m);\n",
    "migrations/002_more.down.sql": "-- backout:risk HIGH\nDROP INDEX items_m;\n"
    "SELECT pg_sleep(1);\nALTER TABLE items DROP COLUMN m;\n",
}

ARGS = {
    "up": ["up"],
    "rollback": ["rollback", "--yes", "--no-simulate", "--backup", "full"],
}
EVENT = {"up": "apply", "rollback": "rollback"}


def _spawn(args: list[str], project: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "backout", *args, "-C", str(project)],
        env=base_env({"DATABASE_URL": url}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _events(url: str) -> list[tuple[int, str, str, str | None]]:
    rows = sql(url, "SELECT id, event, outcome, error FROM backout.events ORDER BY id")
    return [(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]


def test_sigterm_at_random_moments(tmp_path: Path, pg_url: str) -> None:
    rng = random.Random(f"{master_seed()}:sigterm")
    project = write(tmp_path / "p", FILES)
    assert _spawn(["up", "--to", "001"], project, pg_url).wait(timeout=120) == 0
    states = {"R": db_state(pg_url)}
    durations: dict[str, float] = {}
    for command, after in (("up", "A"), ("rollback", "R")):
        clock = time.monotonic()
        proc = _spawn(ARGS[command], project, pg_url)
        assert proc.wait(timeout=120) == 0, proc.communicate()
        durations[command] = time.monotonic() - clock
        states.setdefault(after, db_state(pg_url))
    current = "R"
    trials: list[dict[str, Any]] = []
    for trial in range(SIGTERM_TRIALS):
        command = "up" if current == "R" else "rollback"
        target = "A" if command == "up" else "R"
        seen = _events(pg_url)
        last = seen[-1][0] if seen else 0
        delay = rng.uniform(0.05, durations[command])
        proc = _spawn(ARGS[command], project, pg_url)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        code = proc.returncode
        now = db_state(pg_url)
        new = [e for e in _events(pg_url) if e[0] > last]
        left = next((k for k, s in states.items() if (s.schema, s.data) == (now.schema, now.data)))
        assert "Traceback" not in err, err
        if code == 0:
            assert left == target
            assert any(e[1] == EVENT[command] and e[2] == "ok" for e in new), new
        elif code == 143:
            assert left == current, f"trial {trial}: terminated, but the state is {left}"
            errors = [line for line in err.splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and "terminated by SIGTERM" in errors[0], err
            assert not any(e[2] == "ok" and e[1] == EVENT[command] for e in new), new
            assert all(
                e[2] == "failed" and str(e[3]).startswith("terminated by SIGTERM") for e in new
            ), new
        else:
            # The default SIGTERM: in Python's start-up (nothing done), or as the process exits
            # after the command returned (everything done, recorded and printed).
            assert code == -signal.SIGTERM, f"trial {trial}: exit {code}: {err}"
            finished = left == target and any(e[2] == "ok" for e in new)
            assert (left == current and not new) or finished, (trial, left, new)
        trials.append(
            {
                "command": command,
                "delay": round(delay, 3),
                "exit": code,
                "recorded": bool(new),
                "state": left,
            }
        )
        if left == current:
            # Not a trial: finish the command, so that the next trial is the other command.
            done = _spawn(ARGS[command], project, pg_url)
            assert done.wait(timeout=120) == 0, done.communicate()
            left = target
        current = left
    record_result("sigterm", {"postgresql": {"trials": trials, "held": len(trials)}})
