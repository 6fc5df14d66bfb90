"""Issue 6: a partial rollback reversing ~1 million token transactions, against plain SQL.

    python bench/bench_partial.py            # ~1,000,000 transactions reversed, 5 rounds
    python bench/bench_partial.py --quick    # ~100,000, 3 rounds

The vouchers example (examples/vouchers) migrated and filled with `backout.demo.sampledata.fill`
(1,480,000 users: about 1 million `'voucher_redemption'` TokenTransaction rows, all created
after the seed's cut-off 2024-01-01, among about 6.5 million transactions), ANALYZEd, is kept
as a template; every arm runs on its own fresh copy.

Arms, interleaved round by round:

- the seed's "Token Transaction Rollback" (seeds/001), fixed to subtract each user's *sum*
  of reversed transactions (the seed's `UPDATE ... FROM "TokenTransaction"` subtracts only one
  transaction per user), with the date written in, run by `psql -1 -f`: the baseline;
- the same, plus by hand what backout checks: the preview's row count, the `require` before
  and the three `verify` queries after;
- `backout rollback --partial reverse-tokens --param since=2024-01-01 --backup none
  --i-accept-data-loss --yes`.

After every run the balances are checksummed (md5 of every user's balance, and the count and
sum of the remaining transactions): all arms must leave identical data, so the comparison is
fair. Every backout run is also timed phase by phase (bench/_profiled.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    backout_cmd,
    copy_example,
    machine_facts,
    median,
    pg_clone,
    pg_exec,
    pg_query,
    pg_template,
    phase_rows,
    psql_cmd,
    run,
    run_profiled,
    table,
)

SINCE = "2024-01-01"
PARTIAL = "reverse-tokens"
#: seeds/001 "Token Transaction Rollback", with the balance update aggregated per user
SEED_FIXED = f"""\
-- Reverse specific transactions (adjust balances): once per user, by the sum of its rows
UPDATE "UserTokenBalance" utb
SET "balance" = utb."balance" - tt.total
FROM (
    SELECT "userId", sum("amount") AS total
    FROM "TokenTransaction"
    WHERE "source" = 'voucher_redemption'
    AND "createdAt" > '{SINCE}'
    GROUP BY "userId"
) tt
WHERE utb."userId" = tt."userId";

-- Delete the transaction records
DELETE FROM "TokenTransaction"
WHERE "source" = 'voucher_redemption'
AND "createdAt" > '{SINCE}';
"""
CHECKSUM = """
SELECT (SELECT md5(string_agg("userId" || ':' || "balance", ',' ORDER BY "userId"))
        FROM "UserTokenBalance"),
       (SELECT count(*) FROM "TokenTransaction"),
       (SELECT sum("amount") FROM "TokenTransaction")
"""


def _build(project: Path, users: int):
    def build(url: str) -> None:
        from backout.demo.sampledata import fill

        run([*backout_cmd(), "up", "-C", str(project), "--url", url])
        started = time.perf_counter()
        rows = fill("vouchers", url, scale=users, seed=1)
        print(
            f"  filled {sum(rows.values()):,} rows in {time.perf_counter() - started:.0f} s: {rows}"
        )
        pg_exec(url, "VACUUM ANALYZE", "CHECKPOINT")

    return build


def _partial_script(project: Path):
    from backout.project.layouts import load_project

    for migration in load_project(project).migrations:
        script = migration.partial(PARTIAL)
        if script is not None:
            return script
    raise SystemExit(f"partial {PARTIAL} not found in {project}")


def _checked_sql(project: Path) -> str:
    """The fixed seed SQL plus, by hand, the queries backout runs around it."""
    script = _partial_script(project)
    directives = script.directives

    def bound(sql: str) -> str:
        return sql.replace(":since", f"'{SINCE}'").strip().rstrip(";")

    preview = directives.preview
    head = ""
    if preview is not None:
        head += f"SELECT count(*) FROM ({bound(preview.sql)}) AS preview;\n"
        head += f"{bound(preview.sql)} LIMIT 10;\n"
    head += "".join(f"SELECT ({bound(c.sql)});\n" for c in directives.require)
    tail = "".join(f"SELECT ({bound(c.sql)});\n" for c in directives.verify)
    return head + SEED_FIXED + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~100,000 transactions reversed")
    parser.add_argument("--users", type=int, help="vouchers users (default 1,480,000)")
    parser.add_argument("--repeat", type=int, help="rounds (default 5; 3 with --quick)")
    args = parser.parse_args()
    users = args.users or (148_000 if args.quick else 1_480_000)
    repeat = args.repeat or (3 if args.quick else 5)
    os.environ.pop("DATABASE_URL", None)
    print(f"machine: {machine_facts()}")
    with tempfile.TemporaryDirectory(prefix="backout-bench-") as folder:
        tmp = Path(folder)
        project = copy_example("vouchers", tmp)
        seed_sql = tmp / "seed_fixed.sql"
        seed_sql.write_text(SEED_FIXED)
        checked_sql = tmp / "seed_fixed_checked.sql"
        checked_sql.write_text(_checked_sql(project))
        argv = [
            "rollback",
            "-C",
            str(project),
            "--partial",
            PARTIAL,
            "--param",
            f"since={SINCE}",
            "--backup",
            "none",
            "--i-accept-data-loss",
            "--yes",
        ]
        print(f"building the template (vouchers, {users:,} users)")
        with pg_template(_build(project, users), label="partial") as template:
            from _common import pg_url

            reversed_rows = int(
                pg_query(  # type: ignore[call-overload]
                    pg_url(template),
                    'SELECT count(*) FROM "TokenTransaction" WHERE "source" = '
                    f"'voucher_redemption' AND \"createdAt\" > '{SINCE}'",
                )[0][0]
            )
            size = pg_query(
                pg_url(template), "SELECT pg_size_pretty(pg_database_size(current_database()))"
            )[0][0]
            print(f"  {reversed_rows:,} transactions to reverse; database {size}")
            phases: list[dict[str, float]] = []
            wholes: list[float] = []

            def backout(url: str) -> float:
                done, timed_phases = run_profiled([*argv, "--url", url])
                phases.append(timed_phases)
                wholes.append(done.seconds)
                return done.seconds

            arms = {
                "psql -1 -f, seed SQL fixed (baseline)": lambda url: (
                    run([*psql_cmd(url), "-1", "-f", str(seed_sql)]).seconds
                ),
                "psql -1 -f, + preview/require/verify by hand": lambda url: (
                    run([*psql_cmd(url), "-1", "-f", str(checked_sql)]).seconds
                ),
                f"backout rollback --partial {PARTIAL}": backout,
            }
            samples: dict[str, list[float]] = {n: [] for n in arms}
            names = list(arms)
            checksums: dict[str, set[tuple[object, ...]]] = {n: set() for n in arms}
            for round_ in range(repeat):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for arm in order:
                    with pg_clone(template) as url:
                        pg_exec(url, "CHECKPOINT")
                        samples[arm].append(arms[arm](url))
                        checksums[arm].add(tuple(pg_query(url, CHECKSUM)[0]))
                print(
                    f"  round {round_ + 1}/{repeat}: "
                    + ", ".join(f"{samples[n][-1]:.2f}s" for n in names)
                )
            every = set().union(*checksums.values())
            if len(every) != 1:
                raise SystemExit(f"the arms left different balances: {checksums}")
    (digest, remaining, total) = next(iter(every))
    base, best = median(samples[names[0]]), min(samples[names[0]])
    rows: list[tuple[object, ...]] = []
    for arm in names:
        m, low = median(samples[arm]), min(samples[arm])
        note = (
            "baseline"
            if arm == names[0]
            else f"{(m / base - 1) * 100:+.1f}% (best: {(low / best - 1) * 100:+.1f}%)"
        )
        rows.append((arm, f"{m:.2f}", f"{low:.2f}", f"{max(samples[arm]):.2f}", note))
    table(
        f"reversing {reversed_rows:,} token transactions ({users:,} users, {size}), "
        f"seconds over {repeat} fresh databases per arm",
        ("arm", "median", "min", "max", "vs psql: median (best of N vs best of N)"),
        rows,
    )
    table(
        f"where `backout rollback --partial` spends its time (median of its {repeat} runs)",
        ("phase", "seconds", "share"),
        phase_rows(phases, wholes),
    )
    print(
        f"\nIdentical results in every run of every arm: balances md5 {digest}, "
        f"{remaining:,} transactions left summing to {total}."
    )


if __name__ == "__main__":
    main()
