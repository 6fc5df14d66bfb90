"""Issue 3: a scoped backup (what `backout rollback` takes) against a full one, on >= 1 GB.

    python bench/bench_backup.py            # ~1.2 GB database, 3 rounds
    python bench/bench_backup.py --quick    # ~130 MB, 3 rounds

The database: the vouchers example (examples/vouchers) migrated and filled with
`backout.demo.sampledata.fill` (20,000 users: Voucher and VoucherRedemption, the tables the latest
migration's rollback deletes and drops, are small), plus a big table the rollback never touches,
`"AppEventLog"`, created with plain SQL and filled with `generate_series` (7 million rows, about
1 GB). Nothing changes the database between the commands, so all of them run on it in turn,
interleaved round by round.

Timed (median wall time of the installed command):

- `backout backup`: scoped to what rolling back the latest migration writes (plus the tables
  referencing them, the full schema and the migration ledger), as `backout rollback` takes it;
  the scope is checked against `backout plan --json`;
- `backout backup --full`: every table's rows;
- same-run baselines: `pg_dump --format=custom` of the whole database (what backout's full
  backup runs, without backout's row counts, checksums and verification), and the same
  `pg_dump` with `--exclude-table-data` for the tables outside the scope.

Target: the scoped backup takes under 5 % of the full backup's time. Sizes are reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Stopwatch,
    backout_cmd,
    copy_example,
    machine_facts,
    median,
    pg_exec,
    pg_query,
    pg_template,
    pg_tool,
    run,
    run_cli_in_process,
    table,
)

BIG_TABLE_SQL = """
CREATE TABLE "AppEventLog" (
    "id" BIGSERIAL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "payload" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""
BIG_FILL_SQL = """
INSERT INTO "AppEventLog" ("userId", "kind", "payload", "createdAt")
SELECT 'user_' || (g %% 20000),
       (ARRAY['login', 'view', 'click', 'purchase', 'logout'])[1 + g %% 5],
       md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text),
       TIMESTAMP '2024-01-01' + g * INTERVAL '2 seconds'
FROM generate_series(%s::bigint, %s::bigint) AS g
"""


def _build(project: Path, users: int, events: int):
    def build(url: str) -> None:
        from backout.demo.sampledata import fill

        run([*backout_cmd(), "up", "-C", str(project), "--url", url])
        rows = fill("vouchers", url, scale=users, seed=1)
        print(f"  vouchers: {sum(rows.values()):,} rows {rows}")
        pg_exec(url, BIG_TABLE_SQL)
        import psycopg

        # In slices, so no single statement runs for minutes.
        step = 1_000_000
        with psycopg.connect(url, autocommit=True) as conn:
            for start in range(1, events + 1, step):
                conn.execute(BIG_FILL_SQL, (start, min(events, start + step - 1)))
        print(f"  AppEventLog: {events:,} rows (plain SQL, generate_series)")
        pg_exec(url, "VACUUM ANALYZE", "CHECKPOINT")

    return build


def _sizes(url: str) -> list[tuple[str, int]]:
    rows = pg_query(
        url,
        "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC",
    )
    return [(str(name), int(size)) for name, size in rows]  # type: ignore[call-overload]


def _mb(size: float) -> str:
    return f"{size / 1024 / 1024:,.1f} MB"


def _breakdown(project: Path, url: str, *, full: bool) -> list[tuple[object, ...]]:
    """One in-process `backout backup [--full]` with its phases timed."""
    import backout.backup.catalog
    import backout.backup.take
    from backout.dialects.postgres import backup as pg_backup

    watch = Stopwatch()
    watch.watch(backout.backup.take, "_scope_of_next_rollback", "scope: plan the latest rollback")
    watch.watch(pg_backup, "find_tools", "find pg_dump/pg_restore (--version)")
    watch.watch(pg_backup.PostgresBackupEngine, "row_counts", "count(*) of the tables in it")
    watch.watch(pg_backup, "_run", "pg_dump, then pg_restore --list (processes)")
    watch.watch(backout.backup.take, "file_sha256", "sha256 of the file")
    for module in (backout.backup.take, backout.backup.catalog):  # the file, and the catalog
        watch.watch(module, "write_new_file", "small files written + fsync")
    watch.watch(pg_backup, "read_toc", "verify: pg_restore --list")
    watch.watch(backout.backup.take, "take_backup", "take_backup, incl. the above but scope")
    started = time.perf_counter()
    code = run_cli_in_process(
        ["backup", "-C", str(project), "--url", url, *(["--full"] if full else [])]
    )
    total = time.perf_counter() - started
    watch.restore()
    if code != 0:
        raise SystemExit(f"in-process backup exited {code}")
    rows: list[tuple[object, ...]] = [
        (label, watch.calls[label], f"{seconds * 1000:.0f}", f"{seconds / total * 100:.0f}%")
        for label, seconds in watch.seconds.items()
        if watch.calls[label]
    ]
    rows.append(("whole command, in process (imports already done)", 1, f"{total * 1000:.0f}", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~130 MB instead of ~1.2 GB")
    parser.add_argument("--events", type=int, help="rows of the big table (default 7,000,000)")
    parser.add_argument("--repeat", type=int, help="rounds (default 3)")
    args = parser.parse_args()
    events = args.events or (700_000 if args.quick else 7_000_000)
    repeat = args.repeat or 3
    users = 20_000
    os.environ.pop("DATABASE_URL", None)
    print(f"machine: {machine_facts()}")
    with tempfile.TemporaryDirectory(prefix="backout-bench-") as folder:
        tmp = Path(folder)
        project = copy_example("vouchers", tmp)
        print(f"building the database (vouchers, {users:,} users, + {events:,} events)")
        with pg_template(_build(project, users, events), label="backup") as name:
            from _common import pg_url

            url = pg_url(name)
            database_size = int(pg_query(url, "SELECT pg_database_size(current_database())")[0][0])  # type: ignore[call-overload]
            sizes = _sizes(url)
            print(f"  database {name}: {_mb(database_size)}")
            plan = run(
                [
                    *backout_cmd(),
                    "plan",
                    "-C",
                    str(project),
                    "--url",
                    url,
                    "--json",
                    "--no-simulate",
                ],
                ok=(0, 1),
            )
            scope = tuple(json.loads(plan.stdout)["backup"]["tables"])
            print(f"  `backout plan` scope of the rollback's backup: {', '.join(scope)}")
            outside = [n for n, _ in sizes if f"public.{n}" not in scope]
            pg_dump = pg_tool("pg_dump")

            def backout(full: bool) -> float:
                extra = ["--full"] if full else []
                return run(
                    [*backout_cmd(), "backup", "-C", str(project), "--url", url, *extra]
                ).seconds

            dumps = tmp / "dumps"
            dumps.mkdir()

            def plain(scoped: bool) -> float:
                target = dumps / ("scoped.dump" if scoped else "full.dump")
                target.unlink(missing_ok=True)
                excluded = [f'--exclude-table-data=public."{n}"' for n in outside] if scoped else []
                return run(
                    [pg_dump, "--format=custom", f"--file={target}", *excluded, f"--dbname={url}"]
                ).seconds

            arms = {
                "pg_dump -Fc, whole database (baseline)": lambda: plain(False),
                "backout backup --full": lambda: backout(True),
                "pg_dump -Fc --exclude-table-data (the scope)": lambda: plain(True),
                "backout backup (scoped, as rollback takes it)": lambda: backout(False),
            }
            samples: dict[str, list[float]] = {n: [] for n in arms}
            names = list(arms)
            for round_ in range(repeat):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for arm in order:
                    pg_exec(url, "CHECKPOINT")
                    samples[arm].append(arms[arm]())
                print(
                    f"  round {round_ + 1}/{repeat}: "
                    + ", ".join(f"{samples[n][-1]:.2f}s" for n in names)
                )
            listing = run([*backout_cmd(), "backups", "-C", str(project), "--url", url, "--json"])
            records = json.loads(listing.stdout)["backups"]
            full_sizes = [r["size"] for r in records if r["kind"] == "full"]
            scoped = [r for r in records if r["kind"] == "scoped"]
            if not scoped:
                raise SystemExit("`backout backup` did not take a scoped backup")
            recorded = set(scoped[0]["tables"])
            missing = [t for t in scope if t not in recorded]
            if missing:
                raise SystemExit(f"the scoped backup lacks {missing} that the rollback writes")
            dump_sizes = {p.name: p.stat().st_size for p in dumps.iterdir()}
            scoped_breakdown = _breakdown(project, url, full=False)
            full_breakdown = _breakdown(project, url, full=True)

        full = median(samples["backout backup --full"])
        base = median(samples[names[0]])
        sizes_of = {
            names[0]: dump_sizes.get("full.dump", 0),
            "backout backup --full": median([float(s) for s in full_sizes]),
            names[2]: dump_sizes.get("scoped.dump", 0),
            "backout backup (scoped, as rollback takes it)": median(
                [float(r["size"]) for r in scoped]
            ),
        }
        rows: list[tuple[object, ...]] = []
        for arm in names:
            m = median(samples[arm])
            if arm == "backout backup (scoped, as rollback takes it)":
                note = f"{m / full * 100:.1f}% of full (target < 5%)"
            elif arm == "backout backup --full":
                note = f"{(m / base - 1) * 100:+.0f}% vs pg_dump"
            else:
                note = f"{m / full * 100:.1f}% of backout full"
            rows.append(
                (
                    arm,
                    f"{m:.2f}",
                    f"{min(samples[arm]):.2f}",
                    f"{max(samples[arm]):.2f}",
                    _mb(sizes_of[arm]),
                    note,
                )
            )
        table(
            f"backups of a {_mb(database_size)} database, seconds, median of {repeat}",
            ("what", "median", "min", "max", "file", "note"),
            rows,
        )
        table(
            "table sizes (heap + indexes + TOAST)",
            ("table", "size", "in the scoped backup's rows"),
            [(n, _mb(s), "yes" if f"public.{n}" in recorded else "no") for n, s in sizes],
        )
        for kind, breakdown in (("scoped", scoped_breakdown), ("--full", full_breakdown)):
            table(
                f"where `backout backup` ({kind}) spends its time (one in-process run)",
                ("phase", "calls", "ms", "share"),
                breakdown,
            )
        print(f"\nscoped backup holds the rows of: {', '.join(sorted(recorded))}")


if __name__ == "__main__":
    main()
