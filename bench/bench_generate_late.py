"""``backout generate`` of the last migration alone in an 800+ migration project (issue 11).

The project is the trigger.dev corpus (``<repo>/../shared/corpora``, ``BACKOUT_CORPORA``
overrides), read in place. The draft needs the database as it is just before the migration:
every earlier migration replayed. backout saves that replay (keyed by the chained checksums of
the files before it, see backout.generate.replay_cache) in a file and, on PostgreSQL, as a
template database kept on the server, and copies it next time.

Arms, interleaved, same run:

- ``cold``: the cache folder is emptied and the project's kept states dropped first (the
  replay runs and is saved);
- ``warm``: the cache from the previous run is there (the target: under 2 s);
- ``file``: only the file is there (the kept state was dropped: after 15 minutes unused);
- ``edited``: the cache is there, but an early migration's bytes changed (a copy of the
  corpus with one comment added): the key differs, so the replay runs again: the cache is
  never used for another history;
- baseline: ``psql -f`` of all migrations before the last, one loop, on a fresh database
  (what the replay costs by hand).

    python bench/bench_generate_late.py [--quick] [--no-psql]   # --quick: 2 rounds, not 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PG_ADMIN, backout_cmd, machine_facts, pg_database, psql_cmd, table

REPO = Path(__file__).resolve().parent.parent


def corpus() -> Path:
    """The trigger.dev migrations folder."""
    root = Path(os.environ.get("BACKOUT_CORPORA") or REPO.parent / "shared" / "corpora")
    return root / "trigger.dev" / "prisma" / "migrations"


def make_project(root: Path, migrations: Path) -> Path:
    """A project reading ``migrations`` in place; rollbacks and cache under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "rollback").mkdir(exist_ok=True)
    (root / "backout.toml").write_text(
        f'layout = "prisma"\nmigrations_dir = "{migrations}"\nrollback_dir = "rollback"\n'
    )
    return root


def generate(project: Path, url: str, last: str) -> float:
    """Seconds for ``backout generate LAST --stdout`` (the user's command line)."""
    started = time.perf_counter()
    subprocess.run(
        [*backout_cmd(), "generate", last, "--stdout", "-C", str(project), "--url", url],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "DATABASE_URL": ""},
    )
    return time.perf_counter() - started


def drop_kept(project: Path) -> None:
    """Drop the project's kept replay states on the server (see backout.dialects.postgres.kept)."""
    import hashlib

    import psycopg

    owner = hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:16]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE %s",
            (f"backout kept replay state, key % owner {owner}",),
        ).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def psql_replay(folders: list[Path]) -> float:
    """Seconds for ``psql -f`` of each migration in one loop, on a fresh database."""
    with pg_database() as url:
        started = time.perf_counter()
        for folder in folders:
            subprocess.run(
                [*psql_cmd(url), "-f", str(folder / "migration.sql")],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        return time.perf_counter() - started


def edited_copy(source: Path, dest: Path) -> Path:
    """A copy of the corpus with a comment appended to its third migration."""
    shutil.copytree(source, dest)
    third = sorted(p for p in dest.iterdir() if p.is_dir())[2] / "migration.sql"
    third.write_text(third.read_text() + "\n-- edited\n")
    return dest


def one_round(
    samples: dict[str, list[float]], project: Path, edited: Path, url: str, last: str
) -> None:
    """The backout arms once: cold, warm, from the file only, warm again, edited history."""
    cache = project / ".backout" / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    drop_kept(project)
    samples["cold"].append(generate(project, url, last))
    samples["warm"].append(generate(project, url, last))
    drop_kept(project)
    samples["file"].append(generate(project, url, last))  # and kept again
    samples["warm"].append(generate(project, url, last))
    # the edited project shares nothing with the saved replay: it replays
    shutil.rmtree(edited / ".backout", ignore_errors=True)
    shutil.copytree(cache, edited / ".backout" / "cache")
    samples["edited"].append(generate(edited, url, last))
    drop_kept(edited)


def main() -> int:
    """Run the arms and print medians next to the baseline."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-psql", action="store_true", help="skip the psql replay baseline")
    args = parser.parse_args()
    source = corpus()
    if not source.is_dir():
        print(f"no corpus at {source}", file=sys.stderr)
        return 2
    folders = sorted(p for p in source.iterdir() if p.is_dir())
    last = folders[-1].name
    print(machine_facts())
    print(f"{len(folders)} migrations; drafting {last}")
    samples: dict[str, list[float]] = {
        "cold": [],
        "warm": [],
        "file": [],
        "edited": [],
        "psql": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        project = make_project(Path(tmp) / "p", source)
        edited = make_project(Path(tmp) / "e", edited_copy(source, Path(tmp) / "edited"))
        with pg_database() as url:
            try:
                for _ in range(2 if args.quick else 3):
                    one_round(samples, project, edited, url, last)
                    if not args.no_psql:
                        samples["psql"].append(psql_replay(folders[:-1]))
            finally:
                drop_kept(project)
                drop_kept(edited)
    base = statistics.median(samples["psql"]) if samples["psql"] else float("nan")
    rows = []
    for name, values in samples.items():
        if not values:
            continue
        med = statistics.median(values)
        rows.append(
            (name, f"{med:.2f}", f"{min(values):.2f}", f"{max(values):.2f}", f"{med / base:.2f}x")
        )
    table(
        "generate of the last migration (seconds; ratio to psql replay)",
        ("arm", "median", "min", "max", "vs psql"),
        rows,
    )
    warm = statistics.median(samples["warm"])
    print(f"\ntarget: warm < 2 s: {'met' if warm < 2 else 'NOT met'} ({warm:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
