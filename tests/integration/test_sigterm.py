"""SIGTERM (kill, systemd, container runtimes) is handled like Ctrl-C (issue 12 item 13).

What is in flight is undone, the failed attempt is recorded in history, one error line says
so, and the exit code is 143 (documented in docs/exit-codes.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, db_state, sql, write

pytestmark = pytest.mark.postgres

FILES = {
    "migrations/001_items.up.sql": "CREATE TABLE items (id int PRIMARY KEY);\n"
    "INSERT INTO items VALUES (1), (2);\n",
    "migrations/001_items.down.sql": "-- backout:risk HIGH\nDROP TABLE items;\n",
    "migrations/002_slow.up.sql": "CREATE TABLE slow (id int);\nSELECT pg_sleep(60);\n",
    "migrations/002_slow.down.sql": "-- backout:risk HIGH\nDROP TABLE slow;\n"
    "SELECT pg_sleep(60);\n",
}


def _spawn(args: list[str], project: Path, url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"DATABASE_URL": url, "NO_COLOR": "1", "PYTHONPATH": str(REPO)})
    return subprocess.Popen(
        [sys.executable, "-m", "backout", *args, "-C", str(project)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _sleeping(url: str) -> bool:
    rows = sql(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query LIKE 'SELECT pg_sleep(60)%%' AND state = 'active'",
    )
    return bool(rows[0][0])


def _terminate_while_sleeping(proc: subprocess.Popen[str], url: str) -> tuple[int, str]:
    deadline = time.monotonic() + 60
    while not _sleeping(url):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the slow statement never started"
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 15, "SIGTERM did not end the run promptly"
    return proc.returncode, err


def _last_event(url: str) -> tuple[str, str, str]:
    rows = sql(url, "SELECT event, outcome, error FROM backout.events ORDER BY id DESC LIMIT 1")
    return rows[0]  # type: ignore[return-value]


def test_sigterm_during_up_rolls_back_and_records_the_attempt(tmp_path: Path, pg_url: str) -> None:
    project = write(tmp_path / "p", FILES)
    proc = _spawn(["up", "--to", "001"], project, pg_url)
    assert proc.wait(timeout=120) == 0
    before = db_state(pg_url)
    code, err = _terminate_while_sleeping(_spawn(["up"], project, pg_url), pg_url)
    assert code == 143, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: terminated by SIGTERM: any open transaction was rolled back (a run that had "
        "started is recorded as failed in history)"
    ], err
    assert "Traceback" not in err
    after = db_state(pg_url)
    assert after.schema == before.schema and after.data == before.data
    assert _last_event(pg_url) == ("apply", "failed", "terminated by SIGTERM")
    assert not _sleeping(pg_url)


def test_sigterm_during_rollback_rolls_back_and_records_the_attempt(
    tmp_path: Path, pg_url: str
) -> None:
    project = write(tmp_path / "p", FILES)
    write(project, {"migrations/002_slow.up.sql": "CREATE TABLE slow (id int);\n"})
    assert _spawn(["up"], project, pg_url).wait(timeout=120) == 0
    before = db_state(pg_url)
    args = ["rollback", "--yes", "--no-simulate", "--backup", "none", "--i-accept-data-loss"]
    code, err = _terminate_while_sleeping(_spawn(args, project, pg_url), pg_url)
    assert code == 143, err
    after = db_state(pg_url)
    assert after.schema == before.schema and after.data == before.data
    assert sql(pg_url, "SELECT to_regclass('public.slow') IS NOT NULL")[0][0] is True
    assert _last_event(pg_url) == ("rollback", "failed", "terminated by SIGTERM")
