"""MySQL/MariaDB: a restore is not atomic there, so it is journaled (issue 12 items 4-6, 8).

A restore killed (kill -9) while it loads leaves a half-restored database: ``status`` and
``check`` say so (exit 1) and how to finish it, ``up``/``rollback`` refuse, ``restore --resume``
finishes it (the database then equals the backup exactly) and ``history`` records the attempt.
The same for ``rollback --undo-partial`` killed during its own restore: the interrupted run stays
known until its undo has really finished. A ``backup`` waits for a restore under way (the run
lock) instead of cataloguing its half-way state, and a backup of a half-restored database says
so in its reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO, db_state, run, sql, write

pytestmark = pytest.mark.mysql

ROWS = 150_000

FILES = {
    "migrations/001_items.up.sql": """
        CREATE TABLE items (id INT PRIMARY KEY, note VARCHAR(60) NOT NULL);
        CREATE TABLE tags (id INT PRIMARY KEY, item_id INT NOT NULL);
    """,
    "migrations/001_items.down.sql": "-- backout:risk HIGH\nDROP TABLE tags;\nDROP TABLE items;\n",
    "migrations/002_extra.up.sql": "ALTER TABLE items ADD COLUMN extra INT NULL;\n",
    "migrations/002_extra.down.sql": "-- backout:risk HIGH\nALTER TABLE items DROP COLUMN extra;\n",
}


def _fill(url: str) -> None:
    sql(url, f"INSERT INTO items (id, note) SELECT seq, REPEAT('n', 50) FROM seq_1_to_{ROWS}")
    sql(url, "INSERT INTO tags SELECT seq, seq FROM seq_1_to_2000")


def _spawn(args: list[str], project: Path, url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"DATABASE_URL": url, "NO_COLOR": "1", "PYTHONPATH": str(REPO)})
    return subprocess.Popen(
        [sys.executable, "-m", "backout", *args, "-C", str(project)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> bool:
    """kill -9 the process (and its group) as soon as ``ready()``; True when it was killed."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)
    proc.wait()
    return False


def _loading(url: str) -> Callable[[], bool]:
    """A probe (one connection, closed at exit): a journaled restore has started and is
    changing ``items`` (dropped, or re-created as the backup has it and not yet full)."""
    import atexit

    import pymysql

    from tests.helpers import _mysql_query

    conn, query = _mysql_query(url)
    atexit.register(conn.close)
    # never wait behind the restore's own table locks: a lock held is itself "loading"
    query("SET SESSION lock_wait_timeout = 1")

    def probe() -> bool:
        rows = query(
            "SELECT (SELECT count(*) FROM backout_journal j WHERE j.direction = 'restore' "
            "AND j.entry = 'start' AND j.run_id NOT IN (SELECT run_id FROM backout_journal "
            "WHERE entry = 'finish')), (SELECT count(*) FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('backout_migrations', 'items')), "
            "(SELECT count(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'items' AND COLUMN_NAME = 'extra')"
        )
        started, present, extra = (int(v) for v in rows[0])
        if not started:
            return False
        if present < 2:
            return True  # between a DROP and its CREATE
        if extra:
            return False  # items is still the table from before the restore
        # Re-created as the backup has it (no `extra`) and still loading. This window lasts the
        # whole load; the one above lasts a DROP, which an idle machine can pass between polls.
        try:
            loaded = int(query("SELECT count(*) FROM items")[0][0])
        except pymysql.MySQLError:
            return True  # locked for the load (LOCK TABLES ... WRITE), or dropped again
        return loaded < ROWS

    return probe


def _events(url: str) -> list[tuple[str, str]]:
    return [(str(e), str(o)) for e, o in sql(url, "SELECT event, outcome FROM backout_events")]


def _prepared(tmp_path: Path, url: str) -> tuple[Path, str, object]:
    """Both migrations applied with rows; a full backup of 001-only state is taken first."""
    project = write(tmp_path / "p", FILES)
    assert run(["up", "--to", "001"], project=project, url=url).exit_code == 0
    _fill(url)
    made = run(["backup", "--full"], project=project, url=url)
    assert made.exit_code == 0, made.output
    backup_id = made.output.split("Backup ", 1)[1].split(" ", 1)[0]
    state = db_state(url)
    assert run(["up"], project=project, url=url).exit_code == 0
    sql(url, "DELETE FROM items WHERE id > 100000")
    return project, backup_id, state


def test_a_restore_killed_while_loading_is_reported_and_resumed(
    tmp_path: Path, mysql_url: str
) -> None:
    project, backup_id, backed_up = _prepared(tmp_path, mysql_url)
    proc = _spawn(["restore", backup_id, "--yes"], project, mysql_url)
    assert _kill_when(proc, _loading(mysql_url)), "the restore ended before the kill"

    status = run(["status"], project=project, url=mysql_url)
    assert status.exit_code == 1, status.output
    flat = " ".join(status.output.split())
    assert f"half-restored: the restore of backup {backup_id}" in flat
    assert "backout restore --resume" in flat
    doc = json.loads(run(["status", "--json"], project=project, url=mysql_url).stdout)
    assert [r["backup"] for r in doc["unfinished_restores"]] == [backup_id]
    check = run(["check", "--json"], project=project, url=mysql_url)
    assert check.exit_code == 1
    assert "half_restored" in {p["kind"] for p in json.loads(check.stdout)["problems"]}

    # Nothing else runs on a half-restored database.
    refused = run(["up"], project=project, url=mysql_url)
    assert refused.exit_code == 2 and "half-restored" in refused.stderr
    assert run(["rollback", "--yes"], project=project, url=mysql_url).exit_code == 2
    both = run(["restore", "--resume", backup_id, "--yes"], project=project, url=mysql_url)
    assert both.exit_code == 2
    assert run(["rollback", "--resume", "--yes"], project=project, url=mysql_url).exit_code == 2

    resumed = run(["restore", "--resume", "--yes"], project=project, url=mysql_url)
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (backed_up.schema, backed_up.data)  # type: ignore[attr-defined]
    clean = run(["status"], project=project, url=mysql_url)
    assert clean.exit_code == 0, clean.output
    assert "half-restored" not in clean.output
    history = run(["history", "--json"], project=project, url=mysql_url)
    restores = [e for e in json.loads(history.stdout)["events"] if e["event"] == "restore"]
    assert restores[-1]["outcome"] == "ok"
    assert restores[-1]["details"]["finishes"], "the killed attempt is not in history"
    assert run(["restore", "--resume", "--yes"], project=project, url=mysql_url).exit_code == 2


def test_undo_partial_killed_during_its_restore_keeps_the_run_known(
    tmp_path: Path, mysql_url: str
) -> None:
    project = write(tmp_path / "p", FILES)
    assert run(["up"], project=project, url=mysql_url).exit_code == 0
    _fill(mysql_url)
    applied = db_state(mysql_url)
    # The rollback drops a column holding data (no inverse) and then fails.
    write(
        project,
        {
            "migrations/002_extra.down.sql": "-- backout:risk HIGH\n"
            "ALTER TABLE items DROP COLUMN extra;\nALTER TABLE nope ADD COLUMN x INT;\n"
        },
    )
    failed = run(
        ["rollback", "--yes", "--no-simulate", "--backup", "full"], project=project, url=mysql_url
    )
    assert failed.exit_code == 4, failed.output + failed.stderr
    proc = _spawn(["rollback", "--undo-partial", "--yes"], project, mysql_url)
    assert _kill_when(proc, _loading(mysql_url)), "the undo ended before the kill"

    status = run(["status"], project=project, url=mysql_url)
    assert status.exit_code == 1
    flat = " ".join(status.output.split())
    assert "half-restored" in flat and "while undoing the interrupted run" in flat
    again = run(["rollback", "--undo-partial", "--yes"], project=project, url=mysql_url)
    assert again.exit_code == 2 and "restore --resume" in again.stderr
    assert run(["rollback", "--resume", "--yes"], project=project, url=mysql_url).exit_code == 2

    resumed = run(["restore", "--resume", "--yes"], project=project, url=mysql_url)
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (applied.schema, applied.data)
    doc = json.loads(run(["status", "--json"], project=project, url=mysql_url).stdout)
    assert doc["unfinished_restores"] == []
    assert all(m["interrupted"] is None for m in doc["migrations"])
    assert [m["state"] for m in doc["migrations"]] == ["applied", "applied"]
    undone = sql(mysql_url, "SELECT count(*) FROM backout_journal WHERE entry = 'undone'")
    assert undone[0][0] == 1
    assert run(["status"], project=project, url=mysql_url).exit_code == 0


def _restores_started(url: str) -> int:
    """Journaled restores started so far (each after taking the run lock)."""
    rows = sql(
        url,
        "SELECT count(*) FROM backout_journal WHERE direction = 'restore' AND entry = 'start'",
    )
    return int(rows[0][0])


def test_a_backup_during_a_restore_waits_and_a_half_restored_one_is_labelled(
    tmp_path: Path, mysql_url: str
) -> None:
    project, backup_id, _state = _prepared(tmp_path, mysql_url)
    proc = _spawn(["restore", backup_id, "--yes"], project, mysql_url)
    assert _kill_when(proc, _loading(mysql_url))
    # A backup of the half-restored database is labelled as such.
    made = run(["backup", "--full"], project=project, url=mysql_url)
    assert made.exit_code == 0, made.output + made.stderr
    listed = json.loads(run(["backups", "--json"], project=project, url=mysql_url).stdout)
    assert "half-restored" in listed["backups"][-1]["reason"]
    # A backup started while a restore runs waits for the run lock.
    restore = _spawn(["restore", "--resume", "--yes", "--lock-wait", "60s"], project, mysql_url)
    deadline = time.monotonic() + 60
    while _restores_started(mysql_url) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert restore.poll() is None, "the resumed restore ended before the backups started"
    during = run(["backup", "--full", "--lock-wait", "0"], project=project, url=mysql_url)
    assert during.exit_code == 3, during.output + during.stderr
    waited = _spawn(["backup", "--full", "--lock-wait", "120s"], project, mysql_url)
    assert restore.wait(timeout=300) == 0
    _out, err = waited.communicate(timeout=300)
    assert waited.returncode == 0, err
    listed = json.loads(run(["backups", "--json"], project=project, url=mysql_url).stdout)
    last = listed["backups"][-1]
    assert "half-restored" not in last["reason"]
    assert last["row_counts"]["items"] == ROWS


def test_the_progress_line_says_what_a_mariadb_restore_does(tmp_path: Path, mysql_url: str) -> None:
    project = write(tmp_path / "p", FILES)
    assert run(["up"], project=project, url=mysql_url).exit_code == 0
    assert run(["backup", "--full"], project=project, url=mysql_url).exit_code == 0
    result = run(["restore", "latest", "--yes"], project=project, url=mysql_url)
    assert result.exit_code == 0, result.output
    assert "in one transaction" not in result.output + result.stderr
    assert "statement by statement, journaled" in result.stderr


def test_the_backup_a_restore_takes_of_a_half_restored_database_is_labelled(
    tmp_path: Path, mysql_url: str
) -> None:
    """Running the same restore again (as ``status`` offers) first backs up the current state:
    that backup holds the half-restored state and must say so, as ``backup`` does."""
    project, backup_id, backed_up = _prepared(tmp_path, mysql_url)
    proc = _spawn(["restore", backup_id, "--yes"], project, mysql_url)
    assert _kill_when(proc, _loading(mysql_url)), "the restore ended before the kill"
    again = run(["restore", backup_id, "--yes"], project=project, url=mysql_url)
    assert again.exit_code == 0, again.output + again.stderr
    after = db_state(mysql_url)
    assert (after.schema, after.data) == (backed_up.schema, backed_up.data)  # type: ignore[attr-defined]
    listed = json.loads(run(["backups", "--json"], project=project, url=mysql_url).stdout)
    pre = [b for b in listed["backups"] if b["reason"].startswith(f"before restore of {backup_id}")]
    assert len(pre) == 2, [b["reason"] for b in listed["backups"]]
    assert "half-restored" not in pre[0]["reason"]
    assert "half-restored" in pre[1]["reason"], pre[1]["reason"]


def test_resolve_refuses_on_a_half_restored_database(tmp_path: Path, mysql_url: str) -> None:
    project, backup_id, _state = _prepared(tmp_path, mysql_url)
    proc = _spawn(["restore", backup_id, "--yes"], project, mysql_url)
    assert _kill_when(proc, _loading(mysql_url)), "the restore ended before the kill"
    ledger = sql(
        mysql_url,
        "SELECT count(*) FROM information_schema.TABLES WHERE "
        "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'backout_migrations'",
    )
    write(project, {"migrations/003_more.up.sql": "ALTER TABLE tags ADD COLUMN m INT NULL;\n"})
    refused = run(["resolve", "003", "--applied"], project=project, url=mysql_url)
    assert refused.exit_code == 2, refused.output + refused.stderr
    assert "half-restored" in refused.stderr
    assert (
        sql(
            mysql_url,
            "SELECT count(*) FROM information_schema.TABLES WHERE "
            "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'backout_migrations'",
        )
        == ledger
    )
    assert "resolve" not in {e for e, _o in _events(mysql_url)}
