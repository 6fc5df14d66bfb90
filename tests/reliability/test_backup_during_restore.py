"""Lane "backup during restore": ``backup --full`` started while a restore runs (issue 12).

On MariaDB a restore is not atomic, so a backup taken while it loads would catalogue a
half-restored database as a verified backup. Each round starts ``restore B`` and, after a random
delay, ``backup --full`` with a long ``--lock-wait``: the backup must wait for the restore (the
run lock) and hold exactly the restored state (B's row counts), never a state in between; a
round where the restore is killed part-way instead leaves a half-restored database, and the
backup taken then must say so in its reason. ROUNDS rounds (BACKOUT_BACKUP_RESTORE_ROUNDS).
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

from tests.helpers import run, sql, write
from tests.reliability.common import base_env, master_seed, record_result

pytestmark = pytest.mark.mysql

ROUNDS = int(os.environ.get("BACKOUT_BACKUP_RESTORE_ROUNDS", "4"))
ROWS = 100_000

FILES = {
    "migrations/001_items.up.sql": "CREATE TABLE items (id INT PRIMARY KEY, note VARCHAR(60));\n",
    "migrations/001_items.down.sql": "DROP TABLE items;\n",
}


def _spawn(args: list[str], project: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "backout", *args, "-C", str(project)],
        env=base_env({"DATABASE_URL": url}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _restores_started(url: str) -> int:
    rows = sql(
        url,
        "SELECT count(*) FROM backout_journal WHERE direction = 'restore' AND entry = 'start'",
    )
    return int(rows[0][0])


def _catalog(project: Path) -> list[dict[str, Any]]:
    path = project / ".backout" / "backups" / "catalog.json"
    return list(json.loads(path.read_text())["backups"])


def test_a_backup_never_catalogues_a_restore_half_way(tmp_path: Path, mysql_url: str) -> None:
    rng = random.Random(f"{master_seed()}:backup-during-restore")
    project = write(tmp_path / "p", FILES)
    assert run(["up"], project=project, url=mysql_url).exit_code == 0
    sql(mysql_url, f"INSERT INTO items (id, note) SELECT seq, 'n' FROM seq_1_to_{ROWS}")
    made = run(["backup", "--full"], project=project, url=mysql_url)
    backup = made.output.split("Backup ", 1)[1].split(" ", 1)[0]
    rounds: list[dict[str, Any]] = []
    for number in range(ROUNDS):
        sql(mysql_url, "DELETE FROM items WHERE id % 3 = 0")
        kill = number % 2 == 1  # every other round, the restore is killed part-way
        started = _restores_started(mysql_url)
        restore = _spawn(["restore", backup, "--yes"], project, mysql_url)
        killed = False
        if kill:
            # Once it has begun changing the database, at a random moment of the load.
            deadline = time.monotonic() + 120
            while _restores_started(mysql_url) == started and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.4))
            if restore.poll() is None:
                os.killpg(restore.pid, signal.SIGKILL)
                killed = True
        else:
            time.sleep(rng.uniform(0.5, 2.0))
        known = {r["id"] for r in _catalog(project)}
        taker = _spawn(["backup", "--full", "--lock-wait", "120s"], project, mysql_url)
        _out, err = taker.communicate(timeout=300)
        restore.wait(timeout=300)
        assert taker.returncode == 0, err.decode()
        new = [
            r
            for r in _catalog(project)
            if r["id"] not in known and "before restore" not in r["reason"]
        ]
        assert len(new) == 1, new
        taken = new[0]
        half = "half-restored" in taken["reason"]
        rows = taken["row_counts"].get("items")
        if not half:
            assert rows in (ROWS, ROWS - ROWS // 3), f"round {number}: {rows} rows catalogued"
            if not killed:
                assert rows == ROWS, f"round {number}: the backup did not wait for the restore"
        doc = json.loads(run(["status", "--json"], project=project, url=mysql_url).stdout)
        assert half == bool(doc["unfinished_restores"]), (
            taken["reason"],
            doc["unfinished_restores"],
        )
        if doc["unfinished_restores"]:
            resumed = run(["restore", "--resume", "--yes"], project=project, url=mysql_url)
            assert resumed.exit_code == 0, resumed.output + resumed.stderr
        rounds.append({"killed": killed, "labelled_half_restored": half, "rows": rows})
    record_result("backup_during_restore", {"mariadb": {"rounds": rounds, "held": len(rounds)}})
