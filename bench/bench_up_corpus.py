"""Issue 11: ``backout up`` of a real 820-migration Prisma project vs ``psql -f`` per file.

The corpus is trigger.dev's ``prisma/migrations`` (``<repo>/../shared/corpora``, or
``$BACKOUT_CORPORA``), unmodified: Prisma's ``BEGIN; … COMMIT;`` enum template, 71 migrations
with ``CREATE/DROP INDEX CONCURRENTLY`` (journaled by backout), ``DO`` blocks. Two arms, each on
a fresh empty database, interleaved with the order rotating each round:

- ``psql -f per file``: one shell loop, ``psql -X -q -v ON_ERROR_STOP=1 -f <file>`` for every
  migration in order (what the corpus is known to apply with; every statement autocommits);
- ``backout up``: the real command line, which also writes ``_prisma_migrations`` as Prisma
  does, takes the run lock, and journals the migrations it cannot run in one transaction.

A third arm, for information, runs the same psql loop with ``synchronous_commit=off``: the
baseline's ~2,300 autocommits each wait for a WAL flush, where backout commits once per
migration (per statement only in journaled ones). Prints the median of each arm and the ratio
backout / psql (target: ≤ 1.0×). The connection
reaches psql through libpq's environment (PGHOST…), never on its command line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from _common import (
    backout_cmd,
    machine_facts,
    pg_database,
    pg_tool,
    run,
)

REPO = Path(__file__).resolve().parent.parent


def corpus(name: str) -> Path:
    """The project folder of corpus ``name``."""
    root = Path(os.environ.get("BACKOUT_CORPORA") or REPO.parent / "shared" / "corpora") / name
    if not (root / "prisma" / "migrations").is_dir():
        raise SystemExit(f"corpus not found at {root} (set BACKOUT_CORPORA)")
    return root


def libpq_env(url: str) -> dict[str, str]:
    """The environment that points psql at ``url`` (the password, if any, stays off argv)."""
    from backout.model.urls import parse_url

    parsed = parse_url(url)
    env = {**os.environ, "PGHOST": parsed.host or "127.0.0.1", "PGPORT": str(parsed.port or 5432)}
    env["PGDATABASE"] = parsed.database or ""
    if parsed.user:
        env["PGUSER"] = parsed.user
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    return env


def psql_loop(root: Path, url: str, count: int, *, synchronous_commit: bool = True) -> float:
    """``psql -f`` of each of the first ``count`` migrations, in one shell loop; seconds."""
    files = sorted((root / "prisma" / "migrations").glob("*/migration.sql"))[:count]
    script = 'for f in "$@"; do "$PSQL" -X -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null || exit 1; done'
    env = {**libpq_env(url), "PSQL": pg_tool("psql")}
    if not synchronous_commit:
        env["PGOPTIONS"] = "-c synchronous_commit=off"
    return run(["bash", "-c", script, "loop", *map(str, files)], env=env).seconds


def psql_loop_async(root: Path, url: str, count: int) -> float:
    """The same loop without waiting for each commit's flush (information: how much of the
    baseline is its ~2,300 autocommits, where backout commits once per migration)."""
    return psql_loop(root, url, count, synchronous_commit=False)


def backout_up(root: Path, url: str, count: int) -> float:
    """``backout up`` (``--to`` the ``count``-th migration); seconds."""
    folders = sorted(p for p in (root / "prisma" / "migrations").iterdir() if p.is_dir())
    target = ["--to", folders[count - 1].name] if count < len(folders) else []
    env = {**os.environ, "DATABASE_URL": url, "NO_COLOR": "1"}
    done = run([*backout_cmd(), "up", "-C", str(root), *target], env=env)
    if f"Applied {count} migration(s)" not in done.stdout:
        raise SystemExit(f"backout up did not apply {count} migrations:\n{done.stdout[-1000:]}")
    return done.seconds


ARMS = {
    "psql -f per file": psql_loop,
    "backout up": backout_up,
    "psql, no commit wait": psql_loop_async,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first 200 migrations, 1 round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", default="trigger.dev")
    args = parser.parse_args()
    root = corpus(args.corpus)
    total = len([p for p in (root / "prisma" / "migrations").iterdir() if p.is_dir()])
    count = min(200, total) if args.quick else total
    rounds = 1 if args.quick else args.rounds
    print(machine_facts())
    print(f"corpus {args.corpus}: {count} of {total} migrations, {rounds} round(s)")
    timings: dict[str, list[float]] = {name: [] for name in ARMS}
    names = list(ARMS)
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            with pg_database() as url:
                seconds = ARMS[name](root, url, count)
            timings[name].append(seconds)
            print(f"  round {round_ + 1}: {name:20} {seconds:7.2f} s", flush=True)
    baseline = statistics.median(timings["psql -f per file"])
    ours = statistics.median(timings["backout up"])
    print()
    for name, samples in timings.items():
        shown = ", ".join(f"{s:.2f}" for s in samples)
        print(
            f"{name:20} median {statistics.median(samples):7.2f} s  "
            f"(min {min(samples):.2f}, max {max(samples):.2f}; samples {shown})"
        )
    fast = statistics.median(timings["psql, no commit wait"])
    print(f"ratio backout up / psql -f per file: {ours / baseline:.2f}x (target <= 1.0x)")
    print(f"(information) backout up / psql with synchronous_commit=off: {ours / fast:.2f}x")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    main()
