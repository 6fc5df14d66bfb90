"""Shared helpers for the benchmarks: timing, scratch databases, project generation.

Every benchmark prints its numbers next to a baseline measured in the same run, so a slow or
busy machine moves both and the ratio stays meaningful.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_ADMIN = os.environ.get("BACKOUT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKOUT = [sys.executable, "-m", "backout"]


def timed(func: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``func`` over ``repeat`` runs, in seconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def sh(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    """Run a command, failing loudly."""
    subprocess.run(
        args, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def backout_cmd() -> list[str]:
    """The installed ``backout`` script (what users run), else ``python -m backout``."""
    script = Path(sys.executable).parent / "backout"
    return [str(script)] if script.exists() else BACKOUT


@contextmanager
def pg_database() -> Iterator[str]:
    """A scratch PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def plain_project(root: Path, count: int, *, with_rollbacks: bool = True) -> Path:
    """A plain-layout project of ``count`` small, realistic migrations (tables, index, data)."""
    folder = root / "migrations"
    folder.mkdir(parents=True)
    for i in range(1, count + 1):
        stem = f"{i:06d}_add_table_{i}"
        (folder / f"{stem}.up.sql").write_text(
            f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER);\n"
            f"CREATE INDEX t{i}_name ON t{i} (name);\n"
            f"INSERT INTO t{i} (id, name, n) VALUES (1, 'a', 1), (2, 'b', 2);\n"
        )
        if with_rollbacks:
            (folder / f"{stem}.down.sql").write_text(
                f"-- backout:risk HIGH\n-- backout:impact drops t{i}\nDROP TABLE t{i};\n"
            )
    return root


def report(title: str, rows: list[tuple[str, float, str]]) -> None:
    """Print a small table: what, seconds, comment."""
    print(f"\n== {title}")
    for name, seconds, note in rows:
        print(f"  {name:<48} {seconds * 1000:10.1f} ms  {note}")


# --------------------------------------------------------------------------------------------
# Helpers for the database-heavy benchmarks (rollback, backup, online, plan, partial)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def median(values: list[float]) -> float:
    """The median of ``values`` (the middle one, or the mean of the two middle ones)."""
    return statistics.median(values)


def pg_url(name: str) -> str:
    """The URL of database ``name`` on the benchmark server."""
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def pg_admin(sql: str) -> None:
    """Run one statement on the maintenance database, in autocommit."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def pg_tool(name: str) -> str:
    """A PostgreSQL client tool: on PATH, else the newest ``/usr/lib/postgresql/*/bin``."""
    import glob
    import shutil

    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if not candidates:
        raise SystemExit(f"{name} not found on PATH or in /usr/lib/postgresql/*/bin")
    return candidates[-1]


@contextmanager
def pg_template(build: Callable[[str], None], *, label: str = "tpl") -> Iterator[str]:
    """A scratch database built once by ``build(url)``, yielded by *name* for :func:`pg_clone`.

    Cloning a template (a file copy) is much faster than filling a database again, and gives
    every run the same state, statistics included. Dropped afterwards.
    """
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    pg_admin(f'CREATE DATABASE "{name}"')
    try:
        build(pg_url(name))
        yield name
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def pg_clone(template: str) -> Iterator[str]:
    """A fresh copy of the template database ``template`` (no session may be on it); dropped
    afterwards. ``STRATEGY FILE_COPY`` copies files instead of logging every page."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    try:
        yield pg_url(name)
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_query(
    url: str, sql: str, params: tuple[object, ...] | None = None
) -> list[tuple[object, ...]]:
    """Rows of one query (autocommit)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())


def pg_exec(url: str, *statements: str) -> None:
    """Run statements one by one in autocommit (ANALYZE, CHECKPOINT, DDL...)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def copy_example(name: str, dest: Path) -> Path:
    """A copy of ``examples/<name>`` under ``dest`` (backups and scratch files go there, not
    into the repository)."""
    import shutil

    target = dest / name
    shutil.copytree(EXAMPLES / name, target)
    return target


@dataclass(frozen=True)
class Run:
    """A finished command: exit code, wall seconds, output."""

    code: int
    seconds: float
    stdout: str
    stderr: str


def run(
    args: list[str],
    *,
    ok: tuple[int, ...] = (0,),
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Run:
    """Run a command and time it; exit codes outside ``ok`` fail loudly with its output."""
    started = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(
            f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-2000:]}\n"
            f"{done.stderr[-2000:]}"
        )
    return Run(done.returncode, seconds, done.stdout, done.stderr)


def psql_cmd(url: str) -> list[str]:
    """``psql`` as the runbook uses it: no psqlrc, quiet, stop at the first error."""
    return [pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]


def machine_facts() -> str:
    """One line: date, CPU, memory, load, PostgreSQL version (so numbers can be compared)."""
    import datetime as dt
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        one, five, fifteen = os.getloadavg()
        load = f", load {one:.2f} {five:.2f} {fifteen:.2f}"
    try:
        server = str(pg_query(PG_ADMIN, "SHOW server_version")[0][0]).split()[0]
    except Exception as exc:  # noqa: BLE001 - facts are informative; the benchmark reports it
        server = f"unreachable ({type(exc).__name__})"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{now}; {os.cpu_count()} CPU ({cpu}){memory}{load}; PostgreSQL {server}; "
        f"Python {platform.python_version()}"
    )


def table(title: str, header: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    """Print a small aligned table with a title."""
    cells = [tuple(str(c) for c in header), *(tuple(str(c) for c in row) for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n== {title}")
    for index, row in enumerate(cells):
        print(
            "  "
            + "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print("  " + "  ".join("-" * w for w in widths))


class Stopwatch:
    """Wall time spent inside chosen functions, found by patching them (in-process profiling).

    ``watch(owner, "name", "label")`` replaces ``owner.name`` by a timing wrapper until
    :meth:`restore`. Nested calls of the same label are counted once (outermost).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._depth: dict[str, int] = {}
        self._patched: list[tuple[object, str, object]] = []

    def watch(self, owner: object, name: str, label: str) -> None:
        import functools

        original = getattr(owner, name)
        self._patched.append((owner, name, original))
        self.seconds.setdefault(label, 0.0)
        self.calls.setdefault(label, 0)

        @functools.wraps(original)
        def wrapper(*args: object, **kwargs: object) -> object:
            depth = self._depth.get(label, 0)
            self._depth[label] = depth + 1
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._depth[label] = depth
                if depth == 0:
                    self.seconds[label] += time.perf_counter() - started
                    self.calls[label] += 1

        setattr(owner, name, wrapper)

    def restore(self) -> None:
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)
        self._patched.clear()


def run_cli_in_process(argv: list[str]) -> int:
    """Run ``backout ARGV`` in this process, output discarded (for :class:`Stopwatch`
    breakdowns); its exit code."""
    import contextlib
    import io

    from backout.cli import main

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            main.main(argv, prog_name="backout", standalone_mode=False)
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


def startup_seconds(modules: tuple[str, ...] = (), repeat: int = 5) -> float:
    """Median wall time of a fresh interpreter importing ``modules`` (the CLI's fixed cost
    before it does any work). Defaults to what a database command of backout imports."""
    wanted = modules or (
        "backout.cli",
        "backout.api",
        "backout.rollback.rollback",
        "backout.analysis.impact",
        "backout.run.runner",
        "backout.dialects.postgres.dialect",
        "psycopg",
        "pglast",
        "rich.console",
    )
    code = "import " + ", ".join(wanted)
    return timed(lambda: sh([sys.executable, "-c", code]), repeat)


def watch_rollback_phases(watch: Stopwatch) -> None:
    """Time the phases of ``plan``/``rollback``: planning (and inside it: preview, impact
    counts, require checks, simulation), backup, statements, in-transaction checks."""
    import backout.analysis.impact
    import backout.analysis.simulate
    import backout.backup.take
    import backout.rollback.rollback
    import backout.run.runner

    watch.watch(backout.rollback.rollback, "build_view", "plan (build_view), incl. the 4 below")
    watch.watch(backout.rollback.rollback, "_preview", "  preview query (count + first rows)")
    watch.watch(backout.analysis.impact, "compute_impact", "  impact counts (compute_impact)")
    watch.watch(backout.rollback.rollback, "_evaluate_requires", "  require checks while planning")
    watch.watch(backout.analysis.simulate, "simulate", "  simulation on a schema-only copy")
    watch.watch(backout.backup.take, "take_backup", "backup")
    watch.watch(backout.rollback.rollback, "_execute", "execution (_execute), incl. the 2 below")
    watch.watch(backout.run.runner.ScriptRunner, "run_statement", "  the scripts' statements")
    watch.watch(backout.run.runner.ScriptRunner, "evaluate", "  require/verify in the transaction")


PROFILED = Path(__file__).resolve().parent / "_profiled.py"


def run_profiled(args: list[str], *, ok: tuple[int, ...] = (0,)) -> tuple[Run, dict[str, float]]:
    """``backout ARGS`` (the real command, see _profiled.py), timed as a whole and by phase.

    Returns the run and ``{phase: seconds}``; the top-level phases (labels not indented) add
    up to the whole run, with "other" (connections, the run lock, history, rendering) and
    the interpreter's start-up.
    """
    import json
    import tempfile

    with tempfile.TemporaryDirectory(prefix="backout-prof-") as folder:
        out = Path(folder) / "phases.json"
        done = run([sys.executable, str(PROFILED), str(out), *args], ok=ok)
        data = json.loads(out.read_text())
    phases = {label: float(value[0]) for label, value in data["phases"].items()}
    top = sum(v for label, v in phases.items() if not label.startswith(" "))
    phases["other: connections, lock, history, output"] = float(data["total"]) - top
    phases["interpreter start-up"] = done.seconds - float(data["total"])
    return done, phases


def phase_rows(samples: list[dict[str, float]], whole: list[float]) -> list[tuple[object, ...]]:
    """Median seconds per phase over several profiled runs, with its share of the whole."""
    total = median(whole)
    rows: list[tuple[object, ...]] = []
    for label in samples[0]:
        values = [s.get(label, 0.0) for s in samples]
        if not any(values):
            continue
        m = median(values)
        rows.append((label, f"{m:.2f}", f"{m / total * 100:.0f}%"))
    rows.append(("whole command (median)", f"{total:.2f}", "100%"))
    return rows
