"""Issue 14: a fast start. backout's own time above the floor of any Python tool on PostgreSQL.

    python bench/bench_start.py            # 7 rounds
    python bench/bench_start.py --quick    # 3 rounds

The floor is starting the interpreter and importing the driver: `python -c "import psycopg"`.
Everything is measured on the vouchers example (examples/vouchers, Prisma + PostgreSQL, 200
sample users: tiny data, so the time is start-up, round trips and planning, not the SQL). The
project is copied to a temporary folder with a `backout.toml` whose `scratch_prefix` is this
run's own, so other runs on the shared server neither sweep nor reuse its scratch databases
(they are dropped at the end).

Timed, interleaved with the order rotating each round, median/min/max of N:

- the floor: `python -c "import psycopg"`; and `backout --help`;
- `backout status`;
- `backout plan` (default: simulation on a schema-only scratch copy) and `--no-simulate`;
- `backout rollback --backup none --i-accept-data-loss --yes` (the latest migration, default
  simulation), then `backout up` to re-apply it, on a fresh copy of the database per round;
- psql running the same two scripts (`psql -1 -f` the rollback, then the migration), also on a
  fresh copy.

Beside wall time, the CPU seconds (user + system) of each arm's processes and of the programs
they wait for (pg_dump...): a busy machine stretches wall time, much less CPU time. The
database server's own work is in neither column for backout nor for psql.

Every arm runs once untimed first (bytecode written, as an installed package has it, to a
temporary PYTHONPYCACHEPREFIX; plan's kept simulation copy made). Run it with
`PYTHONPATH=<another checkout>/src` to time another version of backout the same way.

Targets (backout's time above the floor, same run): status <= +0.05 s, plan <= +0.2 s,
rollback --backup none <= +0.3 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PG_ADMIN,
    backout_cmd,
    copy_example,
    machine_facts,
    median,
    pg_admin,
    pg_clone,
    pg_query,
    pg_template,
    psql_cmd,
    run,
    table,
)

MIGRATION = "20240315000000_add_voucher_system"
FLOOR = "floor: python -c 'import psycopg'"
PSQL_REAPPLY = "psql -1 -f the migration (re-apply)"
TARGETS = {"status": 0.05, "plan": 0.2, "rollback --backup none": 0.3}


def _build(project: Path) -> Callable[[str], None]:
    def build(url: str) -> None:
        run([*backout_cmd(), "up", "-C", str(project), "--url", url])
        run([sys.executable, "-m", "backout.demo.sampledata", "vouchers", url, "--scale", "200"])
        run([*psql_cmd(url), "-c", "VACUUM ANALYZE"])

    return build


def _drop_scratch(prefix: str) -> None:
    """Drop every database this run's scratch prefix named (what backout left, by design)."""
    rows = pg_query(
        PG_ADMIN,
        "SELECT datname FROM pg_database WHERE datname LIKE %s",
        (prefix.replace("_", "\\_") + "%",),
    )
    for (name,) in rows:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: CPU seconds (user + system) of each arm's processes and all they waited for (pg_dump...),
#: per run: unlike wall time, hardly moved by other processes queueing for the CPU
CPU: dict[str, list[float]] = {}


def _timed(label: str, args: list[str], *, ok: tuple[int, ...] = (0,)) -> float:
    """Run ``args`` (wall seconds returned); its CPU seconds go to ``CPU[label]``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = run(args, ok=ok)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU.setdefault(label, []).append(cpu)
    return done.seconds


def _arms(
    project: Path, url: str, template: str, samples: dict[str, list[float]]
) -> dict[str, Callable[[], float]]:
    """The timed arms; the cycles' re-apply times go straight into ``samples``."""
    base = [*backout_cmd()]
    where = ["-C", str(project), "--url", url]
    down = project / "prisma" / "rollback" / f"{MIGRATION}_rollback.sql"
    up = project / "prisma" / "migrations" / MIGRATION / "migration.sql"
    roll, reapply = "backout rollback --backup none", "backout up (re-apply)"
    psql_roll, psql_reapply = "psql -1 -f the rollback script", PSQL_REAPPLY

    def cycle_backout() -> float:
        with pg_clone(template) as fresh:
            at = ["-C", str(project), "--url", fresh]
            flags = ["--backup", "none", "--i-accept-data-loss", "--yes"]
            seconds = _timed(roll, [*base, "rollback", *at, *flags])
            samples[reapply].append(_timed(reapply, [*base, "up", *at]))
        return seconds

    def cycle_psql() -> float:
        with pg_clone(template) as fresh:
            seconds = _timed(psql_roll, [*psql_cmd(fresh), "-1", "-f", str(down)])
            samples[psql_reapply].append(
                _timed(psql_reapply, [*psql_cmd(fresh), "-1", "-f", str(up)])
            )
        return seconds

    def command(label: str, *args: str) -> Callable[[], float]:
        return lambda: _timed(label, [*base, *args], ok=(0, 1))

    return {
        FLOOR: lambda: _timed(FLOOR, [sys.executable, "-c", "import psycopg"]),
        "backout --help": command("backout --help", "--help"),
        "backout status": command("backout status", "status", *where),
        "backout plan": command("backout plan", "plan", *where),
        "backout plan --no-simulate": command(
            "backout plan --no-simulate", "plan", "--no-simulate", *where
        ),
        roll: cycle_backout,
        psql_roll: cycle_psql,
    }


def _note(arm: str, m: float, floor: float, psql_down: float) -> str:
    if arm.startswith("psql"):
        return f"{m / floor:.2f}x the floor"
    if not arm.startswith("backout"):
        return ""
    above = m - floor
    note = f"{above:+.3f} s above the floor ({m / floor:.1f}x)"
    key = arm.removeprefix("backout ")
    if key in TARGETS:
        note += f"; target <= +{TARGETS[key]} s: " + ("met" if above <= TARGETS[key] else "NOT met")
    if key == "rollback --backup none":
        note += f"; {m - floor - psql_down:+.3f} s above floor + psql's script"
    return note


def _results(samples: dict[str, list[float]], names: list[str]) -> list[tuple[object, ...]]:
    floor = median(samples[FLOOR])
    psql_down = median(samples["psql -1 -f the rollback script"])
    cpu_floor = median(CPU[FLOOR])
    rows: list[tuple[object, ...]] = []
    for arm in names:
        m = median(samples[arm])
        cpu = median(CPU[arm])
        rows.append(
            (
                arm,
                f"{m:.3f}",
                f"{min(samples[arm]):.3f}",
                f"{max(samples[arm]):.3f}",
                f"{cpu:.3f}",
                f"{cpu - cpu_floor:+.3f}",
                _note(arm, m, floor, psql_down),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--repeat", type=int, help="rounds (default 7)")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 7)
    os.environ.pop("DATABASE_URL", None)
    print(f"machine: {machine_facts()}")
    prefix = f"bench_{uuid.uuid4().hex[:8]}_"
    with tempfile.TemporaryDirectory(prefix="backout-bench-") as folder:
        # Bytecode cached, as an installed package has it (pip compiles it); outside the
        # source tree. PYTHONDONTWRITEBYTECODE would make every run compile backout again.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(folder) / "pycache")
        project = copy_example("vouchers", Path(folder))
        (project / "backout.toml").write_text(f'scratch_prefix = "{prefix}"\n')
        try:
            with pg_template(_build(project), label="start") as template, pg_clone(template) as url:
                samples: dict[str, list[float]] = {"backout up (re-apply)": [], PSQL_REAPPLY: []}
                arms = _arms(project, url, template, samples)
                samples.update({n: [] for n in arms})
                names = list(arms)
                for arm in names:  # warm-up, not counted: bytecode, caches, kept copy
                    arms[arm]()
                for values in (*samples.values(), *CPU.values()):
                    values.clear()
                for round_ in range(repeat):
                    order = names[round_ % len(names) :] + names[: round_ % len(names)]
                    for arm in order:
                        samples[arm].append(arms[arm]())
                    print(
                        f"  round {round_ + 1}/{repeat}: "
                        + ", ".join(f"{samples[n][-1]:.2f}s" for n in names)
                    )
                names += ["backout up (re-apply)", PSQL_REAPPLY]
        finally:
            _drop_scratch(prefix)
    table(
        f"vouchers example, seconds, median of {repeat} (same run)",
        ("what", "median", "min", "max", "CPU s", "CPU vs floor", "wall time: note"),
        _results(samples, names),
    )


if __name__ == "__main__":
    main()
