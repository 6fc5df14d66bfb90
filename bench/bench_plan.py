"""Issue 4: `backout plan` on a PostgreSQL database of 10 million rows in 20 tables.

    python bench/bench_plan.py            # 20 tables x 500,000 rows, 5 rounds
    python bench/bench_plan.py --quick    # 20 tables x 50,000 rows, 3 rounds

A plain-layout project (migrations/NNN_name.up.sql + .down.sql) made up here:
`000001_init` creates tables t01..t16, `000002_feature` adds a column to t01 and t02 and creates
t17..t20. Every table is then filled with plain SQL (generate_series) and the database is
ANALYZEd, so statistics exist. The rollback of `000002_feature`, the one planned, drops the
four tables t17..t20, drops the two columns, deletes a quarter of t03, updates a quarter of
t04 and changes the type of a column of t05: counting matters on nine big tables.

Timed (median wall time of the installed command, interleaved):

- `backout plan --no-simulate`: counts estimated from statistics above 100,000 rows. Target:
  under 1 s;
- `backout plan`: the default, which also rehearses the scripts on a schema-only scratch copy;
- `backout plan --exact --no-simulate`: every count exact;
- same-run baselines: `backout status` (start-up, connection, history), and one psql session
  running `SELECT count(*)` over the 20 tables (what exact counting costs at least).

The data-loss totals of the estimated and the exact plans are compared, and one in-process
run of the default plan says where its time goes.
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
    machine_facts,
    median,
    pg_exec,
    pg_template,
    pg_url,
    psql_cmd,
    run,
    run_cli_in_process,
    startup_seconds,
    table,
)

TABLES = [f"t{i:02d}" for i in range(1, 21)]
COLUMNS = (
    "id BIGINT PRIMARY KEY, account_id INTEGER NOT NULL, status TEXT NOT NULL, "
    "amount NUMERIC(10, 2) NOT NULL, note TEXT, created_at TIMESTAMP NOT NULL"
)
DOWN = """\
-- backout:risk HIGH
-- backout:impact Drops t17..t20, the columns t01.legacy_code and t02.score, the promo rows
-- backout:impact of t03, and turns t05.amount back into whole numbers
DROP TABLE t20;
DROP TABLE t19;
DROP TABLE t18;
DROP TABLE t17;
ALTER TABLE t01 DROP COLUMN legacy_code;
ALTER TABLE t02 DROP COLUMN score;
DELETE FROM t03 WHERE status = 'promo';
UPDATE t04 SET status = 'open' WHERE status = 'promo';
ALTER TABLE t05 ALTER COLUMN amount TYPE INTEGER USING amount::integer;
"""
FILL = """
INSERT INTO {table} (id, account_id, status, amount, note, created_at)
SELECT g, g % 10000, (ARRAY['open', 'paid', 'promo', 'void'])[1 + g % 4],
       (g % 100000) / 100.0, CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || g END,
       TIMESTAMP '2024-01-01' + g * INTERVAL '1 minute'
FROM generate_series(1, {rows}) AS g
"""


def _project(root: Path) -> Path:
    folder = root / "migrations"
    folder.mkdir(parents=True)
    (folder / "000001_init.up.sql").write_text(
        "".join(f"CREATE TABLE {t} ({COLUMNS});\n" for t in TABLES[:16])
    )
    (folder / "000001_init.down.sql").write_text(
        "-- backout:risk HIGH\n" + "".join(f"DROP TABLE {t};\n" for t in reversed(TABLES[:16]))
    )
    (folder / "000002_feature.up.sql").write_text(
        "ALTER TABLE t01 ADD COLUMN legacy_code TEXT;\n"
        "ALTER TABLE t02 ADD COLUMN score INTEGER;\n"
        + "".join(f"CREATE TABLE {t} ({COLUMNS});\n" for t in TABLES[16:])
    )
    (folder / "000002_feature.down.sql").write_text(DOWN)
    return root


def _build(project: Path, rows: int):
    def build(url: str) -> None:
        run([*backout_cmd(), "up", "-C", str(project), "--url", url])
        started = time.perf_counter()
        for name in TABLES:
            pg_exec(url, FILL.format(table=name, rows=rows))
        pg_exec(
            url,
            "UPDATE t01 SET legacy_code = 'L' || id WHERE id % 2 = 0",
            "UPDATE t02 SET score = id % 100 WHERE id % 5 <> 0",
            "VACUUM ANALYZE",
            "CHECKPOINT",
        )
        print(f"  filled {rows * len(TABLES):,} rows in {time.perf_counter() - started:.0f} s")

    return build


def _losses(plan_json: str) -> tuple[int, int, bool]:
    """(rows lost, values lost, exact) from `plan --json`."""
    data = json.loads(plan_json)
    rows = values = 0
    for step in data["steps"]:
        for loss in step["impact"]["losses"]:
            if loss["kind"] == "rows":
                rows += loss["count"]
            else:
                values += loss["count"]
    return rows, values, bool(data.get("counts_exact"))


def _breakdown(project: Path, url: str) -> tuple[list[tuple[object, ...]], float]:
    import backout.analysis.impact
    import backout.analysis.simulate
    import backout.rollback.rollback
    from backout.dialects.postgres.dialect import PostgresDialect

    watch = Stopwatch()
    watch.watch(backout.rollback.rollback, "build_view", "plan (build_view), incl. all below")
    watch.watch(PostgresDialect, "snapshot", "  schema snapshots (catalog reads)")
    watch.watch(backout.analysis.impact, "compute_impact", "  impact counts (compute_impact)")
    watch.watch(backout.analysis.simulate, "simulate", "  simulation on a schema-only copy")
    watch.watch(backout.rollback.rollback, "_evaluate_requires", "  require checks")
    started = time.perf_counter()
    code = run_cli_in_process(["plan", "-C", str(project), "--url", url])
    total = time.perf_counter() - started
    watch.restore()
    if code not in (0, 1):
        raise SystemExit(f"in-process plan exited {code}")
    rows: list[tuple[object, ...]] = [
        (label, watch.calls[label], f"{seconds * 1000:.0f}", f"{seconds / total * 100:.0f}%")
        for label, seconds in watch.seconds.items()
    ]
    rows.append(("whole command, in process (imports already done)", 1, f"{total * 1000:.0f}", ""))
    return rows, total


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 million rows, 3 rounds")
    parser.add_argument("--rows", type=int, help="rows per table (default 500,000)")
    parser.add_argument("--repeat", type=int, help="rounds")
    args = parser.parse_args()
    rows = args.rows or (50_000 if args.quick else 500_000)
    repeat = args.repeat or (3 if args.quick else 5)
    os.environ.pop("DATABASE_URL", None)
    print(f"machine: {machine_facts()}")
    with tempfile.TemporaryDirectory(prefix="backout-bench-") as folder:
        project = _project(Path(folder) / "project")
        print(f"building the database (20 tables x {rows:,} rows)")
        with pg_template(_build(project, rows), label="plan") as name:
            url = pg_url(name)
            counts = Path(folder) / "counts.sql"
            counts.write_text("".join(f"SELECT count(*) FROM {t};\n" for t in TABLES))
            base = [*backout_cmd()]
            outputs: dict[str, str] = {}

            def plan(*flags: str):
                def go() -> float:
                    done = run(
                        [*base, "plan", "-C", str(project), "--url", url, "--json", *flags],
                        ok=(0, 1),
                    )
                    outputs[" ".join(flags)] = done.stdout
                    return done.seconds

                return go

            arms = {
                "backout status (baseline)": lambda: (
                    run([*base, "status", "-C", str(project), "--url", url]).seconds
                ),
                "psql: SELECT count(*) over the 20 tables": lambda: (
                    run([*psql_cmd(url), "-f", str(counts)]).seconds
                ),
                "backout plan --no-simulate (estimates)": plan("--no-simulate"),
                "backout plan (default: simulate)": plan(),
                "backout plan --exact --no-simulate": plan("--exact", "--no-simulate"),
            }
            samples: dict[str, list[float]] = {n: [] for n in arms}
            names = list(arms)
            for round_ in range(repeat):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for arm in order:
                    samples[arm].append(arms[arm]())
                print(
                    f"  round {round_ + 1}/{repeat}: "
                    + ", ".join(f"{samples[n][-1]:.2f}s" for n in names)
                )
            breakdown, _ = _breakdown(project, url)
        status = median(samples[names[0]])
        result: list[tuple[object, ...]] = []
        for arm in names:
            m = median(samples[arm])
            note = "" if arm == names[0] else f"{m / status:.1f}x status"
            if arm == "backout plan --no-simulate (estimates)":
                note += "; target < 1 s: " + ("met" if m < 1.0 else "NOT met")
            result.append(
                (arm, f"{m:.2f}", f"{min(samples[arm]):.2f}", f"{max(samples[arm]):.2f}", note)
            )
        table(
            f"plan over {rows * len(TABLES):,} rows in 20 tables, seconds, median of {repeat}",
            ("what", "median", "min", "max", "note"),
            result,
        )
        accuracy = []
        for flags, label in (("--no-simulate", "estimated"), ("--exact --no-simulate", "exact")):
            lost_rows, lost_values, exact = _losses(outputs[flags])
            accuracy.append((f"plan {flags}", f"{lost_rows:,}", f"{lost_values:,}", exact, label))
        table(
            "what the plan says is lost",
            ("plan", "rows lost", "values lost", "counts_exact", ""),
            accuracy,
        )
        breakdown.append(
            (
                "start-up: interpreter + imports (measured apart)",
                "",
                f"{startup_seconds() * 1000:.0f}",
                "",
            )
        )
        table(
            "where the default plan's time goes (one in-process run)",
            ("phase", "calls", "ms", "share"),
            breakdown,
        )


if __name__ == "__main__":
    main()
