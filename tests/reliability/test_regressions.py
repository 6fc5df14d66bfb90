"""Regression tests: deterministic reproducers of the backout bugs this suite found (B1-B7).

Each test states the documented behaviour, which the bug broke; each bug is fixed and its test
must pass. ``@pytest.mark.regression("Bn: ...")`` says what the bug was: docs/reliability.md
lists them (*Bugs found*) with their outcome in the run. (B3's busy-database case and B5 are
cases of the bad-input corpus, test_bad_inputs.py.) The random lanes (crash.py) and the
concurrency test no longer tolerate these outcomes either.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backout.dialects.postgres.dialect import BACKOUT_LOCK_KEY
from tests.reliability.common import Artifacts, cli, observe, spawn
from tests.reliability.test_concurrency import PG_FILES, SQLITE_FILES, _project

PG_BASE = "20240101000000"


def _wait(child_args: list[str], project: Path, url: str, artifacts: Artifacts, label: str):  # type: ignore[no-untyped-def]
    return spawn(child_args, project=project, url=url, artifacts=artifacts, label=label).wait(
        timeout=120
    )


# --- B1: planning waits for table locks, before the run lock --------------------------------


@pytest.mark.postgres
@pytest.mark.regression(
    "B1: rollback's planning (impact counting, before the run lock) waited without "
    "lock_timeout for table locks held by a running rollback, instead of exiting 3 at once",
)
def test_second_rollback_exits_3_at_once_while_one_runs_pg(
    tmp_path: Path, pg_database: Callable[[], str], artifacts: Artifacts
) -> None:
    """A running rollback holds backout's run lock and an ACCESS EXCLUSIVE lock on the table
    it drops (here: a session doing exactly that). A second ``backout rollback`` must exit 3
    naming it at once (docs/commands/rollback.md: "the run lock is held | 3"; "never waits").
    Before the fix it blocked on ``SELECT count(*) FROM extra_log`` until the first one ended
    (here 8 s), then went on."""
    url = pg_database()
    project = _project(tmp_path / "p", PG_FILES, hold=0)
    assert cli(["up"], project=project, url=url, artifacts=artifacts, label="b1-up").exit_code == 0
    import psycopg

    holder = psycopg.connect(url, application_name="backout/0.1.0 ops@box pid 1")
    holder.execute("SELECT pg_advisory_lock(%s)", (BACKOUT_LOCK_KEY,))
    holder.execute("LOCK TABLE extra_log IN ACCESS EXCLUSIVE MODE")
    timer = threading.Timer(8.0, holder.close)
    timer.start()
    try:
        # --lock-wait 0: refuse at once (by default it waits 5 s for the run lock, then
        # exits 3 the same way: still never behind a table lock)
        outcome = _wait(
            ["rollback", "--to", PG_BASE, "--yes", "--no-simulate", "--lock-wait", "0"],
            project,
            url,
            artifacts,
            "b1",
        )
    finally:
        timer.cancel()
        holder.close()
    assert outcome.exit_code == 3, outcome.describe()
    assert outcome.duration < 5, f"waited {outcome.duration:.1f}s for the other run"


@pytest.mark.postgres
@pytest.mark.regression(
    "B1: planning's counts waited without lock_timeout for a table lock any other session "
    "holds, so `plan` and `rollback` hung for as long as it held it"
)
def test_planning_gives_up_on_a_table_lock_pg(
    tmp_path: Path, pg_database: Callable[[], str], artifacts: Artifacts
) -> None:
    """Another session (no backout run) holds ACCESS EXCLUSIVE on the table the rollback drops.
    ``plan`` answers after lock_timeout (2 s by default), saying the count waited for a lock;
    ``rollback`` exits 3 as quickly and changes nothing (it never runs on counts it lacks)."""
    url = pg_database()
    project = _project(tmp_path / "p", PG_FILES, hold=0)
    assert cli(["up"], project=project, url=url, artifacts=artifacts, label="b1t-up").exit_code == 0
    before = observe(url, prisma=True)
    import psycopg

    holder = psycopg.connect(url, application_name="vacuum-full-job")
    holder.execute("LOCK TABLE extra_log IN ACCESS EXCLUSIVE MODE")
    timer = threading.Timer(20.0, holder.close)
    timer.start()
    try:
        plan = _wait(["plan", "--to", PG_BASE, "--no-simulate"], project, url, artifacts, "b1t-p")
        rollback = _wait(
            ["rollback", "--to", PG_BASE, "--yes", "--no-simulate"], project, url, artifacts, "b1t"
        )
    finally:
        timer.cancel()
        holder.close()
    assert plan.exit_code == 0, plan.describe()
    assert "another session holds a lock" in plan.stdout, plan.describe()
    assert plan.duration < 10, plan.describe()
    assert rollback.exit_code == 3, rollback.describe()
    assert len(rollback.error_lines) == 1, rollback.describe()
    assert "another session holds a lock" in rollback.error_lines[0], rollback.describe()
    assert rollback.duration < 10, rollback.describe()
    assert observe(url, prisma=True).shape == before.shape


@pytest.fixture
def sqlite_writer(tmp_path: Path, artifacts: Artifacts) -> Iterator[tuple[Path, str]]:
    """A migrated SQLite project whose database an application is writing to (open write
    transaction, as any app with a slow request)."""
    project = _project(tmp_path / "p", SQLITE_FILES, steps=1)
    url = f"sqlite:///{tmp_path}/app.db"
    assert cli(["up"], project=project, url=url, artifacts=artifacts, label="b2-up").exit_code == 0
    app = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    app.execute("BEGIN IMMEDIATE")
    app.execute("UPDATE items SET qty = qty + 1 WHERE id = 1")
    try:
        yield project, url
    finally:
        app.execute("ROLLBACK")
        app.close()


@pytest.mark.regression(
    "B2: SQLite impact counting ran in BEGIN IMMEDIATE (the write lock): `plan` waited "
    "10 s behind an application's write transaction, then failed 'database is locked' (exit 4)",
)
def test_plan_reads_while_an_application_writes_sqlite(
    sqlite_writer: tuple[Path, str], artifacts: Artifacts
) -> None:
    """``backout plan`` changes nothing (docs/commands/plan.md), so it needs no write lock: with
    an application mid-write it must answer, quickly. Before the fix: 10 s, then ``error:
    database is locked`` (no file or object named), exit 4; while it held BEGIN IMMEDIATE it
    also blocked every application writer."""
    project, url = sqlite_writer
    outcome = _wait(["plan", "--to", "001", "--no-simulate"], project, url, artifacts, "b2-plan")
    assert outcome.exit_code == 0, outcome.describe()
    assert outcome.duration < 5


# --- B3: restore reports a database error as exit 2 -------------------------------------------


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs (root needed)."""
    volume = tmp_path / "volume"
    volume.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(volume)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({done.stderr.strip()})")
    try:
        yield volume
    finally:
        subprocess.run(["umount", "-l", str(volume)], capture_output=True, check=False)


@pytest.mark.regression(
    "B3: restore turned a database error (here SQLITE_FULL) into BackupError, exit 2 "
    "('bad usage or input') instead of 4 ('a database error')",
)
def test_restore_database_error_exits_4_sqlite(
    tmp_path: Path, small_volume: Path, artifacts: Artifacts
) -> None:
    """The database's volume is full when ``restore`` writes: docs/exit-codes.md says a
    database error is 4 ("the change was undone"), with one error line; it exited 2."""
    project = _project(tmp_path / "p", SQLITE_FILES, steps=1)
    url = f"sqlite:///{small_volume}/app.db"
    assert (
        cli(
            ["up", "--to", "001"], project=project, url=url, artifacts=artifacts, label="b3-up"
        ).exit_code
        == 0
    )
    assert (
        cli(
            ["backup", "--full"], project=project, url=url, artifacts=artifacts, label="b3-bk"
        ).exit_code
        == 0
    )
    assert cli(["up"], project=project, url=url, artifacts=artifacts, label="b3-up2").exit_code == 0
    before = observe(url, prisma=False)
    filler = small_volume / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    try:
        outcome = _wait(["restore", "latest", "--yes"], project, url, artifacts, "b3")
    finally:
        filler.unlink()
    assert observe(url, prisma=False).shape == before.shape
    assert outcome.exit_code == 4, outcome.describe()
    assert len(outcome.error_lines) == 1, outcome.describe()
    assert "database or disk is full" in outcome.error_lines[0], outcome.describe()


def _tool_wrapper(folder: Path, tool: str, when: str, database: str) -> None:
    """``folder/tool`` runs the real tool, but first terminates backout's connections to
    ``database`` when its arguments contain ``when``. The other tool is linked as is."""
    import shutil

    folder.mkdir(exist_ok=True)
    for name in ("pg_dump", "pg_restore"):
        real = shutil.which(name)
        assert real is not None
        target = folder / name
        if name != tool:
            target.symlink_to(real)
            continue
        target.write_text(
            textwrap.dedent(
                f"""\
                #!{sys.executable}
                import os, sys
                if any(arg.startswith({when!r}) for arg in sys.argv[1:]):
                    import psycopg
                    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/{database}",
                                         autocommit=True) as conn:
                        conn.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = %s AND application_name LIKE 'backout/%%'",
                            ({database!r},),
                        )
                os.execv({real!r}, [{real!r}, *sys.argv[1:]])
                """
            )
        )
        target.chmod(0o755)


@pytest.mark.postgres
@pytest.mark.regression(
    "B3: restore turned a database error (the connection cut) into BackupError, exit 2 "
    "instead of 4",
)
def test_restore_connection_cut_exits_4_pg(
    tmp_path: Path, pg_database: Callable[[], str], artifacts: Artifacts
) -> None:
    """backout's connection is terminated when the restore starts loading (as
    ``pg_terminate_backend`` or a failover would): expected exit 4 (it was 2)."""
    url = pg_database()
    project = _project(tmp_path / "p", PG_FILES, hold=0)
    go = lambda args, label: cli(args, project=project, url=url, artifacts=artifacts, label=label)  # noqa: E731
    assert go(["up", "--to", PG_BASE], "b3pg-up").exit_code == 0
    assert go(["backup", "--full"], "b3pg-bk").exit_code == 0
    assert go(["up"], "b3pg-up2").exit_code == 0
    before = observe(url, prisma=True)
    tools = tmp_path / "tools"
    _tool_wrapper(tools, "pg_restore", "--use-list", url.rsplit("/", 1)[1])
    outcome = spawn(
        ["restore", "latest", "--yes"],
        project=project,
        url=url,
        artifacts=artifacts,
        label="b3pg",
        env={"BACKOUT_PG_BIN": str(tools)},
    ).wait(timeout=120)
    assert "Traceback" not in outcome.stderr
    assert outcome.exit_code == 4, outcome.describe()
    assert len(outcome.error_lines) == 1, outcome.describe()
    assert observe(url, prisma=True).shape == before.shape


# --- B4: a connection cut while pg_dump starts ------------------------------------------------


@pytest.mark.postgres
@pytest.mark.regression(
    "B4: a connection cut while pg_dump imported backout's snapshot was reported as "
    "'pg_dump failed: ... invalid snapshot identifier', exit 2 instead of 4",
)
def test_backup_connection_cut_exits_4_pg(
    tmp_path: Path, pg_database: Callable[[], str], artifacts: Artifacts
) -> None:
    """backout exports a snapshot for pg_dump; its connection is terminated as pg_dump starts.
    Expected: a database error (exit 4) saying the connection was lost; it was pg_dump's
    'invalid snapshot identifier' as a failed backup, exit 2 ("bad usage or input")."""
    url = pg_database()
    project = _project(tmp_path / "p", PG_FILES, hold=0)
    assert cli(["up"], project=project, url=url, artifacts=artifacts, label="b4-up").exit_code == 0
    tools = tmp_path / "tools"
    _tool_wrapper(tools, "pg_dump", "--snapshot", url.rsplit("/", 1)[1])
    outcome = spawn(
        ["backup", "--full"],
        project=project,
        url=url,
        artifacts=artifacts,
        label="b4",
        env={"BACKOUT_PG_BIN": str(tools)},
    ).wait(timeout=120)
    assert "Traceback" not in outcome.stderr
    assert outcome.exit_code == 4, outcome.describe()
    assert len(outcome.error_lines) == 1, outcome.describe()
    assert "connection" in outcome.error_lines[0], outcome.describe()
    assert "lost" in outcome.error_lines[0], outcome.describe()


# --- B6: impact counting of a parameterised statement with "%" -----------------------------


@pytest.mark.postgres
@pytest.mark.regression(
    "B6: Dialect.bind escaped % as %% for psycopg, but a counting query without a "
    "placeholder was then run without parameters, so PostgreSQL saw 'id %% 2': not counted",
)
def test_partial_impact_counts_a_statement_with_percent_pg(
    tmp_path: Path, pg_database: Callable[[], str], artifacts: Artifacts
) -> None:
    """``UPDATE items SET extra = :v WHERE id % 2 = 0`` in a partial rollback: plan must count
    the rows it changes. It said: "cannot count: ...: could not be counted (operator does not
    exist: integer %% integer)", and the computed risk fell back to "not countable"."""
    url = pg_database()
    files = dict(PG_FILES)
    files["prisma/rollback/20240201000000_extra_rollback.half.sql"] = (
        "-- backout:risk HIGH\n-- backout:param v text\n"
        "UPDATE items SET extra = :v WHERE id % 2 = 0;\n"
    )
    project = _project(tmp_path / "p", files, hold=0)
    assert cli(["up"], project=project, url=url, artifacts=artifacts, label="b6-up").exit_code == 0
    outcome = cli(
        ["plan", "20240201000000", "--partial", "half", "--param", "v=x"],
        project=project,
        url=url,
        artifacts=artifacts,
        label="b6-plan",
    )
    assert "could not be counted" not in outcome.stdout + outcome.stderr, outcome.describe()
    assert "500" in outcome.stdout, outcome.describe()  # 1000 items, every second one


# --- B7: the SQLite lock file read while its holder writes its name ---------------------------


@pytest.mark.regression(
    "B7: the SQLite run lock's holder truncated the lock file, then wrote its name; a "
    "run reading it in between said 'held by another process' instead of naming the holder",
)
def test_sqlite_lock_holder_is_named_while_it_writes_its_name(
    tmp_path: Path, artifacts: Artifacts
) -> None:
    """Seen in the 8-at-once race: a loser's line named no holder. Here the window between
    ``ftruncate`` and ``pwrite`` (microseconds in backout) is stretched to one second."""
    import fcntl
    import json
    import os

    project = _project(tmp_path / "p", SQLITE_FILES, steps=1)
    url = f"sqlite:///{tmp_path}/app.db"
    assert cli(["up"], project=project, url=url, artifacts=artifacts, label="b7-up").exit_code == 0
    handle = os.open(tmp_path / "app.db.backout-lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(handle, fcntl.LOCK_EX)
    os.ftruncate(handle, 0)
    holder = {"holder": "backout/0.1.0 alice@ops pid 4242"}
    writer = threading.Timer(1.0, lambda: os.pwrite(handle, json.dumps(holder).encode(), 0))
    writer.start()
    try:
        outcome = cli(
            ["rollback", "--to", "001", "--yes", "--no-simulate"],
            project=project,
            url=url,
            artifacts=artifacts,
            label="b7",
        )
    finally:
        writer.join()
        os.close(handle)
    assert outcome.exit_code == 3, outcome.describe()
    assert "alice@ops pid 4242" in outcome.stderr, outcome.describe()
