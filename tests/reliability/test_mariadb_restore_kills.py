"""MariaDB: kill -9 during a restore, and during ``rollback --undo-partial``'s restore (issue 12).

A restore is not atomic on MySQL/MariaDB, so these lanes check what a kill leaves is always told:

- lane "MariaDB kill -9 during restore" (RESTORE_TRIALS): ``restore B`` is killed after a
  random delay (uniform over the measured duration of a restore). Afterwards the database is
  either as before, or exactly the backup, or half-restored, and in the last case ``status``
  exits 1 saying so; never a changed database that nothing reports. ``restore --resume`` (or
  the restore again, when nothing had changed) then brings exactly the backup back, ``status``
  is clean, and ``history`` has the restore with the killed attempt under ``finishes``.
- lane "MariaDB kill -9 during --undo-partial" (UNDO_TRIALS): a rollback that stopped part-way
  and needs its backup to be undone; ``rollback --undo-partial`` is killed at a random moment.
  Afterwards the interrupted run is still known (``status`` exits 1: partly rolled back, or
  half-restored while undoing it) unless the undo finished; finishing it (``restore --resume``
  or ``--undo-partial`` again) brings back exactly the state before the rollback.

Trials are few by default (each restores a 100,000-row table); BACKOUT_MARIADB_KILL_TRIALS
raises both.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import DbState, db_state, run, sql, write
from tests.reliability.common import base_env, master_seed, record_result

pytestmark = pytest.mark.mysql

TRIALS = int(os.environ.get("BACKOUT_MARIADB_KILL_TRIALS", "0"))
RESTORE_TRIALS = TRIALS or 4
UNDO_TRIALS = TRIALS or 3
ROWS = 100_000

FILES = {
    "migrations/001_items.up.sql": "CREATE TABLE items (id INT PRIMARY KEY, note VARCHAR(60));\n"
    "CREATE TABLE tags (id INT PRIMARY KEY, item_id INT NOT NULL);\n",
    "migrations/001_items.down.sql": "DROP TABLE tags;\nDROP TABLE items;\n",
    "migrations/002_extra.up.sql": "ALTER TABLE items ADD COLUMN extra INT NULL;\n",
    "migrations/002_extra.down.sql": "ALTER TABLE items DROP COLUMN extra;\n"
    "ALTER TABLE missing_table ADD COLUMN x INT;\n",
}


def _spawn(args: list[str], project: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "backout", *args, "-C", str(project)],
        env=base_env({"DATABASE_URL": url}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _kill_after(proc: subprocess.Popen[bytes], delay: float) -> bool:
    """kill -9 the run (and its dump/client children) after ``delay``; True if it was running."""
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def _same(a: DbState, b: DbState) -> bool:
    return (a.schema, a.data) == (b.schema, b.data)


def _status(project: Path, url: str) -> tuple[int, str, dict[str, Any]]:
    human = run(["status"], project=project, url=url)
    doc = json.loads(run(["status", "--json"], project=project, url=url).stdout)
    return human.exit_code, " ".join(human.output.split()), doc


def _backup_id(output: str) -> str:
    return output.split("Backup ", 1)[1].split(" ", 1)[0]


def test_kill_9_during_a_mariadb_restore_is_always_told(tmp_path: Path, mysql_url: str) -> None:
    rng = random.Random(f"{master_seed()}:mariadb-restore")
    project = write(tmp_path / "p", FILES)
    assert run(["up", "--to", "001"], project=project, url=mysql_url).exit_code == 0
    sql(mysql_url, f"INSERT INTO items (id, note) SELECT seq, 'n' FROM seq_1_to_{ROWS}")
    made = run(["backup", "--full"], project=project, url=mysql_url)
    backup = _backup_id(made.output)
    wanted = db_state(mysql_url)

    def diverge() -> DbState:
        assert run(["up"], project=project, url=mysql_url).exit_code == 0
        sql(mysql_url, "DELETE FROM items WHERE id % 7 = 0")
        return db_state(mysql_url)

    before = diverge()
    clock = time.monotonic()
    assert run(["restore", backup, "--yes"], project=project, url=mysql_url).exit_code == 0
    duration = time.monotonic() - clock + 1.0  # a process also starts Python
    trials: list[dict[str, Any]] = []
    for trial in range(RESTORE_TRIALS):
        before = diverge()
        delay = rng.uniform(0.3, duration)
        killed = _kill_after(_spawn(["restore", backup, "--yes"], project, mysql_url), delay)
        middle = db_state(mysql_url)
        code, text, doc = _status(project, mysql_url)
        half = bool(doc["unfinished_restores"])
        outcome = (
            "before" if _same(middle, before) else "after" if _same(middle, wanted) else "half"
        )
        if outcome == "half":
            assert half and code == 1 and "half-restored" in text, (trial, text)
        if half:
            resumed = run(["restore", "--resume", "--yes"], project=project, url=mysql_url)
            assert resumed.exit_code == 0, resumed.output + resumed.stderr
        elif outcome == "before":
            again = run(["restore", backup, "--yes"], project=project, url=mysql_url)
            assert again.exit_code == 0, again.output + again.stderr
        assert _same(db_state(mysql_url), wanted), f"trial {trial}: not the backup afterwards"
        assert _status(project, mysql_url)[0] == 0
        events = json.loads(run(["history", "--json"], project=project, url=mysql_url).stdout)
        last = [e for e in events["events"] if e["event"] == "restore"][-1]
        assert last["outcome"] == "ok"
        if half:
            assert last["details"].get("finishes"), "the killed attempt is not in history"
        trials.append(
            {"delay": round(delay, 3), "killed": killed, "left": outcome, "reported": half}
        )
    record_result(
        "mariadb_kills",
        {"restore": {"trials": trials, "held": len(trials), "duration_s": round(duration, 2)}},
    )


def test_kill_9_during_undo_partial_keeps_the_run_known(tmp_path: Path, mysql_url: str) -> None:
    rng = random.Random(f"{master_seed()}:mariadb-undo")
    project = write(tmp_path / "p", FILES)
    assert run(["up", "--to", "001"], project=project, url=mysql_url).exit_code == 0
    sql(mysql_url, f"INSERT INTO items (id, note) SELECT seq, 'n' FROM seq_1_to_{ROWS}")
    trials: list[dict[str, Any]] = []
    duration = 0.0
    for trial in range(UNDO_TRIALS + 1):
        assert run(["up"], project=project, url=mysql_url).exit_code == 0
        sql(mysql_url, "UPDATE items SET extra = id WHERE id <= 1000")
        applied = db_state(mysql_url)
        failed = run(
            ["rollback", "--yes", "--no-simulate", "--backup", "full"],
            project=project,
            url=mysql_url,
        )
        assert failed.exit_code == 4, failed.output + failed.stderr
        if trial == 0:  # calibration: how long an undo by backup takes
            clock = time.monotonic()
            done = run(["rollback", "--undo-partial", "--yes"], project=project, url=mysql_url)
            assert done.exit_code == 0, done.output + done.stderr
            duration = time.monotonic() - clock + 1.0
            assert _same(db_state(mysql_url), applied)
            sql(mysql_url, "ALTER TABLE items DROP COLUMN extra")
            sql(mysql_url, "DELETE FROM backout_migrations WHERE migration_key = '002'")
            # and golang-migrate's version back to 001 (`migrate force 1`): 002 pending again
            sql(mysql_url, "UPDATE schema_migrations SET version = 1, dirty = 0")
            continue
        delay = rng.uniform(0.3, duration)
        killed = _kill_after(
            _spawn(["rollback", "--undo-partial", "--yes"], project, mysql_url), delay
        )
        code, text, doc = _status(project, mysql_url)
        known = bool(doc["unfinished_restores"]) or any(m["interrupted"] for m in doc["migrations"])
        finished = _same(db_state(mysql_url), applied) and not known
        left = "half-restored" if doc["unfinished_restores"] else "interrupted" if known else "done"
        assert known or finished, f"trial {trial}: the interrupted run was lost: {text}"
        if known:
            assert code == 1
            if doc["unfinished_restores"]:
                assert doc["unfinished_restores"][-1]["undoes"], text
                step = run(["restore", "--resume", "--yes"], project=project, url=mysql_url)
            else:
                step = run(["rollback", "--undo-partial", "--yes"], project=project, url=mysql_url)
            assert step.exit_code == 0, step.output + step.stderr
        assert _same(db_state(mysql_url), applied), f"trial {trial}: not the state before"
        code, text, doc = _status(project, mysql_url)
        assert code == 0 and not doc["unfinished_restores"], text
        trials.append(
            {
                "delay": round(delay, 3),
                "killed": killed,
                "left": left,
            }
        )
        # Back to the start of the cycle: the migration rolled back by hand (not a trial).
        sql(mysql_url, "ALTER TABLE items DROP COLUMN extra")
        sql(mysql_url, "DELETE FROM backout_migrations WHERE migration_key = '002'")
        sql(mysql_url, "UPDATE schema_migrations SET version = 1, dirty = 0")  # migrate force 1
    record_result(
        "mariadb_kills",
        {"undo_partial": {"trials": trials, "held": len(trials), "duration_s": round(duration, 2)}},
    )
