"""``backout test --all`` on the 820-migration trigger.dev corpus vs the same work by hand.

Setup (not timed): ``backout generate`` drafts every rollback into a temporary folder; the
corpus itself is read in place (``<repo>/../shared/corpora``, ``BACKOUT_CORPORA`` overrides).

Arms, each on a fresh database, in the same run:

- ``backout``: ``backout test --all --no-smoke --json`` (apply, roll back, compare the catalog
  snapshot and ``pg_dump -s``, rows and orphans, apply again; for every migration);
- ``by hand``: the plain walk a careful person would script: for every migration,
  ``psql -f`` the migration, ``psql -1 -f`` its rollback, ``pg_dump -s`` and ``diff`` with
  the dump taken before it, ``psql -f`` the migration again, ``pg_dump -s`` (the next "before").

Target: backout ≤ 1.0× the walk by hand. ``--limit N`` walks the first N migrations only
(the whole corpus takes tens of minutes per arm on a busy 2-core machine). ``--base SRC`` adds
an arm running another version's ``src`` folder (e.g. ``git archive`` of an older commit) for a
before/after in the same run; ``--rounds N`` repeats the arms, interleaved, order rotating::

    python bench/bench_test_all.py [--limit 200] [--base /tmp/old/src] [--rounds 2]
"""

from __future__ import annotations

import argparse
import difflib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _common import backout_cmd, machine_facts, pg_database, pg_tool, psql_cmd, table
from bench_corpora import corpora_root, corpus_project

from backout import api
from backout.dialects.postgres.schema_dump import normalise_dump
from backout.project.config import load_config
from backout.project.migration import Project
from backout.run.workspace import Workspace


def _psql(url: str, path: Path, *, single: bool) -> None:
    args = [*psql_cmd(url), *(["-1"] if single else []), "-f", str(path)]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _dump(url: str) -> str:
    done = subprocess.run(
        [pg_tool("pg_dump"), "--schema-only", "--no-owner", "--no-acl", "-d", url],
        check=True,
        capture_output=True,
    )
    return normalise_dump(done.stdout.decode())


def _project(root: Path, url: str) -> Project:
    return Workspace.open(load_config(root, url=url)).project


def by_hand(root: Path) -> tuple[float, int]:
    """Seconds for the plain walk, and how many rollbacks failed or left a different schema
    dump. A rollback that fails (``psql -1``: nothing changed) leaves the migration applied:
    the walk goes on from there, as backout's does."""
    differ = 0
    with pg_database() as url:
        project = _project(root, url)
        started = time.perf_counter()
        before = _dump(url)
        for migration in project.migrations:
            assert migration.down is not None
            _psql(url, migration.up.path, single=False)
            try:
                _psql(url, migration.down.path, single=True)
            except subprocess.CalledProcessError:
                differ += 1
                before = _dump(url)
                continue
            after = _dump(url)
            if list(difflib.unified_diff(before.splitlines(), after.splitlines(), n=0)):
                differ += 1
            _psql(url, migration.up.path, single=False)
            before = _dump(url)
        return time.perf_counter() - started, differ


def with_backout(root: Path, src: str | None = None) -> tuple[float, int]:
    """Seconds for ``backout test --all``, and how many migrations it passed (``src``: run
    that ``src`` folder's backout instead of the installed one)."""
    import json

    env = {**os.environ, "DATABASE_URL": ""}
    if src is not None:
        env["PYTHONPATH"] = src

    with pg_database() as url:
        started = time.perf_counter()
        done = subprocess.run(
            [
                *backout_cmd(),
                "test",
                "--all",
                "--no-smoke",
                "--json",
                "-C",
                str(root),
                "--url",
                url,
            ],
            capture_output=True,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - started
    doc = json.loads(done.stdout)
    return seconds, sum(1 for m in doc["migrations"] if m["status"] == "passed")


def main() -> int:
    """Draft the rollbacks, run both arms, print times and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="first N migrations only")
    parser.add_argument("--base", default=None, help="another version's src folder: one more arm")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    migrations = corpora_root() / "trigger.dev" / "prisma" / "migrations"
    if not migrations.is_dir():
        print(f"no corpus at {migrations}", file=sys.stderr)
        return 2
    print(machine_facts())
    rows = []
    with corpus_project(migrations, args.limit) as root, pg_database() as url:
        config = load_config(root, url=url)
        ids = [m.id for m in _project(root, url).migrations]
        started = time.perf_counter()
        api.generate(config, ids, force=True)
        print(f"{len(ids)} migrations; drafts generated in {time.perf_counter() - started:.1f} s")
        arms: list[tuple[str, Callable[[], tuple[float, str]]]] = [
            ("backout test --all", lambda: _outcome(with_backout(root), "passed")),
            ("by hand (psql + pg_dump -s + diff)", lambda: _outcome(by_hand(root), "differ")),
        ]
        if args.base:
            base = args.base
            arms.append((f"base ({base})", lambda: _outcome(with_backout(root, base), "passed")))
        for turn in range(args.rounds):
            for name, arm in arms[turn % len(arms) :] + arms[: turn % len(arms)]:
                seconds, outcome = arm()
                rows.append((turn + 1, name, seconds, outcome))
                print(f"  round {turn + 1}: {name}: {seconds:.1f} s, {outcome}", flush=True)
    hand = {r[0]: r[2] for r in rows if r[1].startswith("by hand")}
    table(
        f"test --all over {len(ids)} migrations (ratio: to the walk by hand of the same round)",
        ("round", "arm", "seconds", "per migration", "vs by hand", "outcome"),
        [
            (
                str(turn),
                name,
                f"{seconds:.1f}",
                f"{seconds / len(ids):.3f}",
                f"{seconds / hand[turn]:.2f}x",
                outcome,
            )
            for turn, name, seconds, outcome in rows
        ],
    )
    return 0


def _outcome(measured: tuple[float, int], what: str) -> tuple[float, str]:
    seconds, count = measured
    return seconds, f"{count} {'failed or differ' if what == 'differ' else what}"


if __name__ == "__main__":
    raise SystemExit(main())
