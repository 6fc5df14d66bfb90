"""The crash and connection-cut lanes, started once per session in the background.

The lanes (tests/reliability/crash.py) run as separate processes: two kill -9 lanes per
database and one connection-cut lane per database, all at once, while the tests that are not
sensitive to timing (bad inputs, fuzzing, security) run in the foreground; test_crash.py and
test_connection_cut.py wait for their results. Tests that measure time (concurrency, online
load, the known-bug reproducers) are ordered after them (see conftest.py), on a quiet machine.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.common import (
    REPO,
    Artifacts,
    base_env,
    cut_trials,
    master_seed,
    pg_connect,
    replay_hint,
    trials,
)
from tests.reliability.crash import COMMANDS, LaneSpec

#: kill -9 lanes per database (their quotas add up to the trials per command)
LANES = 2
CRASH_TESTS = ("test_kill_9_postgres", "test_kill_9_sqlite")
CUT_TESTS = ("test_connection_cut_postgres", "test_connection_cut_sqlite")


class LaneRuns:
    """Lanes started in the background; :meth:`results` waits for one database's lanes."""

    def __init__(self) -> None:
        self.procs: dict[str, list[tuple[subprocess.Popen[bytes], Path, Path]]] = {}
        self.started = time.monotonic()
        self.scratch_before: set[str] = set()
        self.admin_url = ""
        self.volume_mounted = False

    def start(
        self,
        dialect: str,
        urls: list[str],
        folder: Path,
        artifacts: Artifacts,
        *,
        mode: str = "kill",
        total: int | None = None,
        volume: str = "",
    ) -> None:
        """Start one lane per URL, ``total`` trials per command between them."""
        quota = -(-(total or trials()) // len(urls))
        runs = []
        for lane, url in enumerate(urls):
            root = folder / f"{dialect}-{mode}-{lane}"
            spec = LaneSpec(
                dialect=dialect,
                url=url,
                root=str(root / "project"),
                artifacts=str(artifacts.folder(f"{mode}-{dialect}-{lane}")),
                quota=quota,
                seed=master_seed(),
                lane=lane,
                mode=mode,
                volume=volume,
            )
            root.mkdir(parents=True)
            spec_path = root / "spec.json"
            result_path = root / "result.json"
            spec_path.write_text(
                json.dumps({**asdict(spec), "url": "(from BACKOUT_LANE_URL)"}), encoding="utf-8"
            )
            log = (root / "lane.log").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.crash", str(spec_path), str(result_path)],
                cwd=REPO,
                env=base_env({"BACKOUT_LANE_URL": url}),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            runs.append((proc, result_path, root / "lane.log"))
        self.procs[f"{dialect}-{mode}"] = runs

    def results(self, dialect: str, mode: str = "kill") -> list[dict[str, Any]]:
        """Wait for the lanes of ``dialect`` in ``mode``; their results."""
        found = []
        for proc, result_path, log in self.procs.get(f"{dialect}-{mode}", []):
            code = proc.wait(timeout=1800)
            if code != 0 or not result_path.exists():
                pytest.fail(
                    f"crash lane exited {code}:\n{log.read_text(errors='replace')[-4000:]}",
                    pytrace=False,
                )
            found.append(json.loads(result_path.read_text(encoding="utf-8")))
        return found

    def stop(self) -> None:
        """Kill lanes still running (a failed or interrupted session)."""
        for runs in self.procs.values():
            for proc, _, _ in runs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _scratch_databases(admin_url: str) -> set[str]:
    with pg_connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'backout\\_scratch\\_%'"
        ).fetchall()
    return {r[0] for r in rows}


def _selected(request: pytest.FixtureRequest, name: str) -> bool:
    return any(item.name.startswith(name) for item in request.session.items)


@contextlib.contextmanager
def start_lanes(
    request: pytest.FixtureRequest, folder: Path, artifacts: Artifacts
) -> Iterator[LaneRuns]:
    """Start every selected lane; on exit stop them, keep their history, drop their databases."""
    runs = LaneRuns()
    admin_url = ""
    databases: list[str] = []
    volume = folder / "volume"
    try:
        if any(_selected(request, t) for t in (CRASH_TESTS[0], CUT_TESTS[0])):
            try:
                admin_url = request.getfixturevalue("pg_admin_url")
            except (pytest.skip.Exception, pytest.fail.Exception):
                admin_url = ""  # the PostgreSQL tests themselves skip or fail
        if admin_url:
            from tests.reliability.conftest import with_password

            runs.scratch_before = _scratch_databases(admin_url)
            runs.admin_url = admin_url

            def database(name: str) -> str:
                with pg_connect(admin_url) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    conn.execute(f'CREATE DATABASE "{name}"')
                databases.append(name)
                return with_password(admin_url, name)

            if _selected(request, CRASH_TESTS[0]):
                urls = [database(f"backout_rel_crash_{master_seed()}_{n}") for n in range(LANES)]
                runs.start("postgresql", urls, folder, artifacts)
            if _selected(request, CUT_TESTS[0]):
                url = database(f"backout_rel_cut_{master_seed()}")
                runs.start("postgresql", [url], folder, artifacts, mode="cut", total=cut_trials())
        if _selected(request, CRASH_TESTS[1]):
            urls = [f"sqlite:///{folder}/sqlite-kill-{n}/project/app.db" for n in range(LANES)]
            runs.start("sqlite", urls, folder, artifacts)
        if _selected(request, CUT_TESTS[1]):
            volume.mkdir()
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(volume)],
                capture_output=True,
                text=True,
                check=False,
            )
            runs.volume_mounted = done.returncode == 0
            if runs.volume_mounted:
                url = f"sqlite:///{volume}/app.db"
                runs.start(
                    "sqlite",
                    [url],
                    folder,
                    artifacts,
                    mode="cut",
                    total=cut_trials(),
                    volume=str(volume),
                )
        yield runs
    finally:
        runs.stop()
        if runs.volume_mounted:
            subprocess.run(["umount", "-l", str(volume)], capture_output=True, check=False)
        if admin_url:
            from tests.reliability.conftest import dump_history, with_password

            for name in databases:
                try:
                    dump_history(with_password(admin_url, name), artifacts, name)
                finally:
                    with pg_connect(admin_url) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def summarize(dialect: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures for the report."""
    all_trials = [t for r in results for t in r["trials"]]
    per_command: dict[str, Any] = {}
    for command in COMMANDS:
        mine = [t for t in all_trials if t["command"] == command]
        killed = [t for t in mine if t["killed"]]
        per_command[command] = {
            "trials": len(mine),
            "killed": len(killed),
            "finished_before_kill": len(mine) - len(killed),
            "survived": sum(1 for t in mine if not t["problems"]),
            "killed_survived": sum(1 for t in killed if not t["problems"]),
            "left_before": sum(1 for t in killed if t["outcome"] == "before"),
            "left_after": sum(1 for t in killed if t["outcome"] == "after"),
            "in_between": sum(1 for t in mine if t["outcome"] == "in between"),
            "phases": dict(Counter(t["phase"] for t in killed).most_common()),
            "orphaned_processes": sum(t["orphans"] for t in mine),
            "after_state_without_event": sum(1 for t in mine if t["state_without_event"]),
            "exit_codes": dict(Counter(str(t["exit_code"]) for t in mine).most_common()),
            "resolved_before_rerun": sum(1 for t in mine if t.get("resolved")),
            "runs_to_completion": sum(1 for t in mine if t.get("rerun") == "completed"),
        }
    strays = [r["trials"][-1]["stray_files"] if r["trials"] else 0 for r in results]
    return {
        "dialect": dialect,
        "lanes": len(results),
        "seed": master_seed(),
        "trials": len(all_trials),
        "survived": sum(1 for t in all_trials if not t["problems"]),
        "per_command": per_command,
        "calibration": [r["calibration"] for r in results],
        "lane_seconds": [round(r["seconds"], 1) for r in results],
        "stray_backup_files": sum(strays),
        "max_backend_wait": max((t["backend_wait"] for t in all_trials), default=0.0),
        "failures": [t for t in all_trials if t["problems"]][:20],
        "error_lines": sorted({t["error_line"] for t in all_trials if t.get("error_line")})[:40],
        "setup_problems": [p for r in results for p in r["setup_problems"]],
    }


def check(dialect: str, summary: dict[str, Any], test: str, per_command: int = 0) -> None:
    failures = summary["failures"]
    lines = [
        f"{dialect}: lane {t['lane']} cycle {t['cycle']} {t['command']} interrupted after "
        f"{t['delay']}s ({t['phase']}): " + "; ".join(t["problems"])
        for t in failures
    ]
    assert not summary["setup_problems"], summary["setup_problems"]
    assert not failures, "\n".join([replay_hint(test), *lines])
    for command, figures in summary["per_command"].items():
        # Runs that ended before their kill (or cut) landed do not count.
        assert figures["killed"] >= (per_command or trials()), (command, figures)
        assert figures["in_between"] == 0
