"""Shared machinery of the reliability suite: settings, runs, observed state, invariants, results.

Nothing here asserts: functions return what they saw, and the tests (or the crash lanes) decide.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

#: the distinctive password put in every PostgreSQL URL of the suite (trust auth ignores it);
#: the secrets scan greps every artifact for it
PASSWORD = "Rel1ab1lity-Hunter2-S3cret-7f3a9c"
#: a second one, with characters that need percent-encoding, used in bad-URL cases
PASSWORD_SPECIAL = "p@ss:w/rd-Zq8%Secret-91d2"


# --------------------------------------------------------------------------------------------
# settings


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def trials() -> int:
    """Kill-9 trials per command and database (``BACKOUT_RELIABILITY_TRIALS``, default 50)."""
    return max(1, _env_int("BACKOUT_RELIABILITY_TRIALS", 50))


def cut_trials() -> int:
    """Connection-cut trials per command and database (``BACKOUT_RELIABILITY_CUT_TRIALS``)."""
    return max(1, _env_int("BACKOUT_RELIABILITY_CUT_TRIALS", max(5, trials() // 10)))


def fuzz_examples() -> int:
    """Hypothesis examples per property (``BACKOUT_RELIABILITY_FUZZ``, default 150)."""
    return max(10, _env_int("BACKOUT_RELIABILITY_FUZZ", 150))


_SEED: int | None = None


def master_seed() -> int:
    """``BACKOUT_RELIABILITY_SEED`` or a fresh random seed (printed by the tests that use it)."""
    global _SEED  # noqa: PLW0603 - one seed per process, chosen once
    if _SEED is None:
        value = os.environ.get("BACKOUT_RELIABILITY_SEED", "").strip()
        _SEED = int(value) if value else random.SystemRandom().randrange(1, 2**31)
    return _SEED


def replay_hint(test: str) -> str:
    """How to replay a run with the same seed."""
    return (
        f"replay: BACKOUT_RELIABILITY_SEED={master_seed()} "
        f"BACKOUT_RELIABILITY_TRIALS={trials()} BACKOUT_RELIABILITY_CUT_TRIALS={cut_trials()} "
        f"pytest {test}"
    )


# --------------------------------------------------------------------------------------------
# artifacts and results


class Artifacts:
    """A folder collecting every output and file the suite produces (scanned for secrets)."""

    _counter = itertools.count(1)

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def folder(self, name: str) -> Path:
        """A fresh sub-folder."""
        path = self.root / f"{name}-{os.getpid()}-{next(self._counter)}"
        path.mkdir(parents=True, exist_ok=False)
        return path

    def save(self, label: str, text: str | bytes) -> Path:
        """Keep one captured output."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:60]
        path = self.root / "outputs" / f"{os.getpid()}-{next(self._counter):06d}-{safe}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path


def results_dir() -> Path:
    """Where tests write their figures (``BACKOUT_RELIABILITY_RESULTS``, set by conftest)."""
    return Path(os.environ["BACKOUT_RELIABILITY_RESULTS"])


def record_result(name: str, data: dict[str, Any]) -> None:
    """Write one section's figures for the report (merged with what is there already)."""
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    merged: dict[str, Any] = {}
    if path.exists():
        merged = json.loads(path.read_text(encoding="utf-8"))
    merged.update(data)
    path.write_text(json.dumps(merged, indent=2, sort_keys=True, default=str), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# running backout


@dataclass
class Outcome:
    """One finished (or killed) run of backout."""

    args: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    duration: float
    killed: bool = False
    pid: int = 0

    @property
    def error_lines(self) -> list[str]:
        """stderr lines that start with ``error:``."""
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    def describe(self) -> str:
        """For assertion messages (the URL's password masked: these reach the report)."""
        from backout.model.urls import mask_url

        return mask_url(
            f"backout {' '.join(self.args)} -> exit {self.exit_code} "
            f"(killed={self.killed}, {self.duration:.2f}s)\n--- stdout\n{self.stdout[-2000:]}"
            f"\n--- stderr\n{self.stderr[-2000:]}"
        )


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a backout subprocess: no DATABASE_URL from outside, no colour."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def cli(
    args: Sequence[str],
    *,
    project: Path,
    url: str | None,
    artifacts: Artifacts,
    label: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> Outcome:
    """Run backout in-process (click's runner; stdin is not a terminal); output is kept."""
    from click.testing import CliRunner

    from backout.cli import main

    argv = [*args, "-C", str(project)]
    if url is not None:
        argv += ["--url", url]
    runner = CliRunner()
    environment = {"DATABASE_URL": "", "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    started = time.monotonic()
    result = runner.invoke(main, argv, env=environment, input=input, catch_exceptions=True)
    duration = time.monotonic() - started
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        stderr += "".join(traceback.format_exception(result.exception))
    artifacts.save(f"{label}.out", result.stdout)
    artifacts.save(f"{label}.err", stderr)
    return Outcome(list(argv), result.exit_code, result.stdout, stderr, duration)


@dataclass
class Child:
    """A backout subprocess (its own session, so orphans it leaves can be found)."""

    proc: subprocess.Popen[bytes]
    args: list[str]
    out_path: Path
    err_path: Path
    started: float

    @property
    def pid(self) -> int:
        """The backout process id."""
        return self.proc.pid

    def output(self) -> tuple[str, str]:
        """(stdout, stderr) so far."""
        return (
            self.out_path.read_text(encoding="utf-8", errors="replace"),
            self.err_path.read_text(encoding="utf-8", errors="replace"),
        )

    def wait(self, timeout: float) -> Outcome:
        """Wait for it to finish (kill -9 after ``timeout`` and say so)."""
        killed = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            killed = True
        return self.outcome(killed=killed)

    def kill(self) -> None:
        """kill -9 the backout process only (as the OOM killer would), and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def outcome(self, *, killed: bool) -> Outcome:
        """What it did."""
        out, err = self.output()
        return Outcome(
            self.args,
            self.proc.returncode,
            out,
            err,
            time.monotonic() - self.started,
            killed=killed,
            pid=self.proc.pid,
        )


def spawn(
    args: Sequence[str],
    *,
    project: Path,
    url: str | None,
    artifacts: Artifacts,
    label: str,
    env: dict[str, str] | None = None,
    umask: int | None = None,
) -> Child:
    """Start ``python -m backout ARGS -C project --url url`` with stdin not a terminal."""
    argv = [*args, "-C", str(project)]
    if url is not None:
        argv += ["--url", url]
    out_path = artifacts.save(f"{label}.out", "")
    err_path = artifacts.save(f"{label}.err", "")

    def before_exec() -> None:
        if umask is not None:
            os.umask(umask)

    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backout", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=base_env(env),
            cwd=str(project),
            start_new_session=True,
            preexec_fn=before_exec if umask is not None else None,  # noqa: PLW1509
        )
    return Child(proc, list(argv), out_path, err_path, time.monotonic())


def orphans_of(pgid: int) -> list[int]:
    """Processes still alive in the process group of a killed backout (pg_dump, pg_restore)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ")"
        fields = stat.rsplit(")", 1)[1].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def wait_orphans(pgid: int, timeout: float = 60.0) -> int:
    """Wait until the orphans of a killed run have exited; returns how many there were."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        alive = orphans_of(pgid)
        seen.update(alive)
        if not alive:
            return len(seen)
        if time.monotonic() > deadline:
            for pid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise TimeoutError(f"orphans of pid {pgid} still running after {timeout}s: {alive}")
        time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# observing a database


@dataclass(frozen=True)
class State:
    """What a trial compares: schema, data, ledger and event log."""

    schema: str
    #: table -> (rows, checksum), history and ledger tables excluded
    data: tuple[tuple[str, int, str], ...]
    #: migration key -> applied / failed / rolled back (absent: never attempted)
    ledger: tuple[tuple[str, str], ...]
    #: ledger rows with finished_at NULL and rolled_back_at NULL (a claimed failure)
    failed_rows: int
    #: (id, event, outcome, migration, backup)
    events: tuple[tuple[Any, ...], ...] = field(compare=False)

    @property
    def shape(self) -> tuple[str, tuple[tuple[str, int, str], ...]]:
        """Schema and data: what "before" and "after" are compared on."""
        return (self.schema, self.data)

    def status(self, key: str) -> str:
        """The ledger's view of one migration."""
        return dict(self.ledger).get(key, "pending")

    def rows(self) -> dict[str, int]:
        """Rows per table."""
        return {name: count for name, count, _ in self.data}


_LEDGER_TABLES = {"_prisma_migrations", "backout_migrations", "backout_events"}


def _ledger_status(rows: Sequence[tuple[Any, ...]]) -> tuple[tuple[tuple[str, str], ...], int]:
    by_key: dict[str, list[tuple[Any, Any]]] = {}
    failed = 0
    for key, finished, rolled_back in rows:
        by_key.setdefault(str(key), []).append((finished, rolled_back))
        if finished is None and rolled_back is None:
            failed += 1
    status = {}
    for key, attempts in by_key.items():
        live = [a for a in attempts if a[1] is None]
        if any(f is not None for f, _ in live):
            status[key] = "applied"
        elif live:
            status[key] = "failed"
        else:
            status[key] = "rolled back"
    return tuple(sorted(status.items())), failed


def observe(url: str, *, prisma: bool, history_schema: str = "backout", conn: Any = None) -> State:
    """Read the database's schema fingerprint, table stats, ledger and event log.

    ``conn``: an open psycopg connection to reuse (PostgreSQL), else one is opened.
    """
    from backout.model.urls import parse_url

    parsed = parse_url(url)
    if parsed.dialect == "sqlite":
        return _observe_sqlite(parsed.path, prisma=prisma)
    if conn is not None:
        return _observe_postgres(conn, prisma=prisma, history_schema=history_schema)
    with pg_connect(url) as fresh:
        return _observe_postgres(fresh, prisma=prisma, history_schema=history_schema)


def _observe_sqlite(path: Path | None, *, prisma: bool) -> State:
    from backout.dialects.sqlite.catalog import read_sqlite_snapshot, read_table_stats

    assert path is not None
    if not path.exists():
        return State("(no file)", (), (), 0, ())
    conn = sqlite3.connect(path, timeout=30)
    try:

        def query(sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
            return list(conn.execute(sql.replace("%s", "?"), params or ()).fetchall())

        snapshot = read_sqlite_snapshot(query)
        stats = read_table_stats(query, snapshot)
        tables = {r[0] for r in query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        ledger = "_prisma_migrations" if prisma else "backout_migrations"
        key = "migration_name" if prisma else "migration_key"
        rows = (
            query(f"SELECT {key}, finished_at, rolled_back_at FROM {ledger}")
            if ledger in tables
            else []
        )
        events = (
            query("SELECT id, event, outcome, migration, backup FROM backout_events ORDER BY id")
            if "backout_events" in tables
            else []
        )
    finally:
        conn.close()
    status, failed = _ledger_status(rows)
    data = tuple(
        sorted(
            (name, s.row_count, s.checksum)
            for name, s in stats.items()
            if name not in _LEDGER_TABLES
        )
    )
    return State(snapshot.fingerprint(), data, status, failed, tuple(map(tuple, events)))


def pg_connect(url: str, **kwargs: Any) -> Any:
    """A psycopg connection (autocommit) to ``url`` without backout's query parameters."""
    import psycopg

    return psycopg.connect(url.split("?", 1)[0], autocommit=True, connect_timeout=10, **kwargs)


def _observe_postgres(conn: Any, *, prisma: bool, history_schema: str) -> State:
    from backout.dialects.postgres.catalog import read_postgres_snapshot, read_table_stats

    def query(sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    snapshot = read_postgres_snapshot(query)
    stats = read_table_stats(query, snapshot)

    def exists(name: str) -> bool:
        return bool(query("SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0])

    ledger = "public._prisma_migrations" if prisma else f'"{history_schema}".migrations'
    key = "migration_name" if prisma else "migration_key"
    rows = (
        query(f"SELECT {key}, finished_at, rolled_back_at FROM {ledger}") if exists(ledger) else []
    )
    events_table = f'"{history_schema}".events'
    events = (
        query(f"SELECT id, event, outcome, migration, backup FROM {events_table} ORDER BY id")
        if exists(events_table)
        else []
    )
    status, failed = _ledger_status(rows)
    data = tuple(
        sorted(
            (name, s.row_count, s.checksum)
            for name, s in stats.items()
            if name.rsplit(".", 1)[-1] not in _LEDGER_TABLES
        )
    )
    return State(snapshot.fingerprint(), data, status, failed, tuple(map(tuple, events)))


# --------------------------------------------------------------------------------------------
# locks


def pg_backends_of(conn: Any, pid: int) -> list[tuple[int, str, str | None]]:
    """Server backends opened by backout process ``pid`` (by application_name)."""
    rows = conn.execute(
        "SELECT pid, state, xact_start::text FROM pg_stat_activity WHERE application_name LIKE %s",
        (f"backout/% pid {pid}",),
    ).fetchall()
    return [(int(r[0]), str(r[1]), r[2]) for r in rows]


def wait_backends_gone(conn: Any, pid: int, timeout: float = 60.0) -> float:
    """Wait until the server has noticed that process ``pid`` died; returns the wait."""
    started = time.monotonic()
    while pg_backends_of(conn, pid):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"backends of dead pid {pid} still there after {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - started


def pg_advisory_locks(conn: Any) -> list[tuple[Any, ...]]:
    """Advisory locks held in the connection's database: (pid, application_name, objid)."""
    return list(
        conn.execute(
            "SELECT l.pid, a.application_name, l.objid FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
    )


def sqlite_lock_free(db: Path) -> bool:
    """True when a new run could take the SQLite run lock (``<db>.backout-lock``) now."""
    path = db.with_name(db.name + ".backout-lock")
    if not path.exists():
        return True
    handle = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True
    finally:
        os.close(handle)


def sqlite_integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` (opening the file also rolls back a hot journal)."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# backup folder


@dataclass
class CatalogCheck:
    """What the backup folder looks like."""

    records: int = 0
    problems: list[str] = field(default_factory=list)
    #: files in the folder that no record names (e.g. a dump a killed run left half-written)
    stray_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


_HASHES: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime): backups are never rewritten."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _HASHES[key]


def check_backup_folder(folder: Path) -> CatalogCheck:
    """The catalog parses; every record's file exists with its size and sha256; modes 0600."""
    check = CatalogCheck()
    if not folder.exists():
        return check
    mode = folder.stat().st_mode & 0o777
    if mode != 0o700:
        check.problems.append(f"folder {folder} has mode {mode:o}, expected 700")
    catalog = folder / "catalog.json"
    named: set[str] = {"catalog.json", ".catalog.lock"}
    if catalog.exists():
        try:
            document = json.loads(catalog.read_text(encoding="utf-8"))
            records = document["backups"]
        except (ValueError, KeyError) as exc:
            check.problems.append(f"catalog.json does not parse: {exc}")
            records = []
        check.records = len(records)
        for record in records:
            path = folder / record["file"]
            named.update({record["file"], f"{record['id']}.schema.json"})
            if not path.exists():
                check.problems.append(f"{record['id']}: file {record['file']} is missing")
                continue
            if path.stat().st_size != record["size"]:
                check.problems.append(f"{record['id']}: size differs from the catalog")
            if _sha256(path) != record["sha256"]:
                check.problems.append(f"{record['id']}: sha256 differs from the catalog")
    for path in folder.iterdir():
        file_mode = path.stat().st_mode & 0o777
        if path.is_file() and file_mode != 0o600:
            check.problems.append(f"{path.name} has mode {file_mode:o}, expected 600")
        if path.name not in named:
            check.stray_files.append(path.name)
    # `backout backups` must name exactly these (hidden temporary files aside).
    from backout.backup.catalog import BackupCatalog
    from backout.model.errors import BackupError

    try:
        shown = {p.name for p in BackupCatalog(folder).uncatalogued()}
    except BackupError:
        shown = None  # a damaged catalog: reported above
    expected = {name for name in check.stray_files if not name.startswith(".")}
    if shown is not None and shown != expected:
        check.problems.append(
            f"backups names {sorted(shown)} as uncatalogued; the folder holds {sorted(expected)}"
        )
    return check


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    box: list[float] = []
    started = time.monotonic()
    try:
        yield box
    finally:
        box.append(time.monotonic() - started)
