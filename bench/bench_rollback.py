"""Issue 3: the overhead of `backout rollback` over `psql -1 -f` of the same rollback scripts.

    python bench/bench_rollback.py            # ~1 million rows, 5 fresh databases per arm
    python bench/bench_rollback.py --quick    # ~100,000 rows, 3 per arm

The giftregistry example (examples/giftregistry), migrated and filled with
`backout.demo.sampledata.fill` (scale 54,000 registries: about a million rows), then ANALYZEd, is
kept as a template; every timed command gets its own fresh copy of it (`CREATE DATABASE ...
TEMPLATE`), so all arms start from the identical state, statistics included. The rollback
undoes the last two migrations (`--to 20250101000000_init`).

Arms, interleaved (the order rotates each round) and summarised by their medians:

- `psql -1 -f <schema drift rollback> -f <encryption rollback>`: the runbook; the baseline;
- the same, plus the scripts' own `require`/`verify` queries run by hand in the transaction
  (the same work backout does to prove the rollback worked);
- `backout rollback --to ... --backup none --i-accept-data-loss --yes --no-simulate`;
- the same with the default `--simulate` (a schema-only scratch copy rehearses the scripts).

Target: backout within +5 % of psql. Every backout run is also timed phase by phase (planning
and impact counts, require/verify queries, the statements; see bench/_profiled.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
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
    pg_url,
    phase_rows,
    psql_cmd,
    run,
    run_profiled,
    table,
)

TARGET = "20250101000000_init"
SCRIPTS = (
    "prisma/rollback/20250720000002_fix_critical_schema_drift_rollback.sql",
    "prisma/rollback/20250720000000_encrypt_access_tokens_rollback.sql",
)


def _build(project: Path, scale: int):
    def build(url: str) -> None:
        from backout.demo.sampledata import fill

        run([*backout_cmd(), "up", "-C", str(project), "--url", url])
        rows = fill("giftregistry", url, scale=scale, seed=1)
        print(f"  filled {sum(rows.values()):,} rows: {rows}")
        pg_exec(url, "ANALYZE", "CHECKPOINT")

    return build


def _load_script(project: Path, relative: str):
    from backout.project.layouts import load_project

    for migration in load_project(project).migrations:
        if migration.down is not None and migration.down.display == relative:
            return migration.down
    raise SystemExit(f"{relative} not found in {project}")


def _checks_sql(project: Path, folder: Path) -> Path:
    parts = []
    for relative in SCRIPTS:
        script = _load_script(project, relative)
        requires = "".join(f"SELECT ({c.sql});\n" for c in script.directives.require)
        verifies = "".join(f"SELECT ({c.sql});\n" for c in script.directives.verify)
        parts.append(requires + script.text + "\n" + verifies)
    path = folder / "rollback_with_checks.sql"
    path.write_text("\n".join(parts))
    return path


def _schema_shape(url: str) -> list[tuple[object, ...]]:
    """Columns of the application's tables: both arms must end in the same schema."""
    return pg_query(
        url,
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text "
        "FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name <> '_prisma_migrations' ORDER BY 1, 2",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~100,000 rows, 3 rounds")
    parser.add_argument("--scale", type=int, help="giftregistry registries (54,000 ≈ 1M rows)")
    parser.add_argument("--repeat", type=int, help="rounds (fresh databases per arm)")
    args = parser.parse_args()
    scale = args.scale or (5_400 if args.quick else 54_000)
    repeat = args.repeat or (3 if args.quick else 5)
    os.environ.pop("DATABASE_URL", None)
    print(f"machine: {machine_facts()}")
    with tempfile.TemporaryDirectory(prefix="backout-bench-") as folder:
        tmp = Path(folder)
        project = copy_example("giftregistry", tmp)
        checks = _checks_sql(project, tmp)
        scripts = [str(project / s) for s in SCRIPTS]
        print(f"building the template (giftregistry, scale {scale:,})")
        with pg_template(_build(project, scale), label="rollback") as template:
            size = pg_query(
                pg_url(template), "SELECT pg_size_pretty(pg_database_size(current_database()))"
            )[0][0]
            print(f"  template {template}: {size}")

            def psql(url: str) -> float:
                files = [a for s in scripts for a in ("-f", s)]
                return run([*psql_cmd(url), "-1", *files]).seconds

            def psql_checks(url: str) -> float:
                return run([*psql_cmd(url), "-1", "-f", str(checks)]).seconds

            phases: dict[str, list[dict[str, float]]] = {"no-simulate": [], "simulate": []}
            wholes: dict[str, list[float]] = {"no-simulate": [], "simulate": []}

            def backout(simulate: bool):
                flag = "--simulate" if simulate else "--no-simulate"
                key = "simulate" if simulate else "no-simulate"

                def go(url: str) -> float:
                    done, timed_phases = run_profiled(
                        [
                            "rollback",
                            "-C",
                            str(project),
                            "--url",
                            url,
                            "--to",
                            TARGET,
                            "--backup",
                            "none",
                            "--i-accept-data-loss",
                            "--yes",
                            flag,
                        ]
                    )
                    phases[key].append(timed_phases)
                    wholes[key].append(done.seconds)
                    return done.seconds

                return go

            arms = {
                "psql -1 -f (2 rollback scripts)": psql,
                "psql -1 -f, scripts + their require/verify": psql_checks,
                "backout rollback --no-simulate": backout(False),
                "backout rollback (default: --simulate)": backout(True),
            }
            samples: dict[str, list[float]] = {name: [] for name in arms}
            shapes: dict[str, list[tuple[object, ...]]] = {}
            names = list(arms)
            for round_ in range(repeat):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    with pg_clone(template) as url:
                        pg_exec(url, "CHECKPOINT")
                        samples[name].append(arms[name](url))
                        if round_ == 0:
                            shapes[name] = _schema_shape(url)
                print(
                    f"  round {round_ + 1}/{repeat}: "
                    + ", ".join(f"{samples[n][-1]:.2f}s" for n in names)
                )
            first = shapes[names[0]]
            for name, shape in shapes.items():
                if shape != first:
                    raise SystemExit(f"{name} left a different schema than {names[0]}")

        base = median(samples[names[0]])
        checked = median(samples[names[1]])
        rows: list[tuple[object, ...]] = []
        best = min(samples[names[0]])
        best_checked = min(samples[names[1]])
        for name in names:
            m, low = median(samples[name]), min(samples[name])
            if name == names[0]:
                note = "baseline"
            else:
                note = f"{(m / base - 1) * 100:+.1f}% (best: {(low / best - 1) * 100:+.1f}%)"
            if name.startswith("backout"):
                note += (
                    f"; vs psql with the same checks {(m / checked - 1) * 100:+.1f}% "
                    f"(best: {(low / best_checked - 1) * 100:+.1f}%)"
                )
            if name == "backout rollback --no-simulate":
                note += "; target < +5%"
            rows.append((name, f"{m:.2f}", f"{low:.2f}", f"{max(samples[name]):.2f}", note))
        table(
            f"rollback of 2 migrations, giftregistry scale {scale:,} ({size}), "
            f"seconds over {repeat} fresh databases per arm",
            ("arm", "median", "min", "max", "vs psql -1 -f: median (best of N vs best of N)"),
            rows,
        )
        for key in ("no-simulate", "simulate"):
            table(
                f"where `backout rollback --{key}` spends its time (median of its {repeat} runs)",
                ("phase", "seconds", "share"),
                phase_rows(phases[key], wholes[key]),
            )
        print(
            "\nBoth psql and backout leave the same schema (checked on the first round). "
            "'plan' runs once, before the run lock; under it, history and schema are re-checked."
        )


if __name__ == "__main__":
    main()
