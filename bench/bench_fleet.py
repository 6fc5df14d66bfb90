"""Issue 16: one command over many targets (``--targets FILE``).

    python bench/bench_fleet.py            # 50 databases, 200 schemas, 3 rounds
    python bench/bench_fleet.py --quick    # 12 databases, 200 schemas, 1 round

Two measurements, each next to its baseline in the same run:

- **rollback over 50 databases**: ``backout rollback --to INIT --yes --targets FILE --parallel 8``
  against 50 sequential ``backout rollback --to INIT --yes --url URL`` runs (what a shell loop
  does today). Every database is a fresh ``TEMPLATE`` copy of one built once (a small Prisma
  project, 2 migrations, 2,000 rows in the table the rollback drops), so both arms start from
  the identical state; the default rollback (scoped backup with pg_dump, simulation on a
  schema-only scratch copy) runs on each. Where the time goes: wall and CPU seconds (user +
  system of backout and of pg_dump/pg_restore), the sum of the per-target durations the fleet
  reports (its ``--json``), and so the effective parallelism.
- **status over 200 tenant schemas** of one database (``base =`` + ``query =`` in the targets
  file): ``backout status --targets FILE`` (default ``--parallel 4``, and 8) against one
  ``backout status --url`` of one schema. Target: under 2 s.

Scratch databases are named ``bench_*`` and dropped at the end; projects and backups go to a
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PG_ADMIN,
    Stopwatch,
    backout_cmd,
    machine_facts,
    median,
    pg_admin,
    pg_exec,
    pg_query,
    pg_template,
    pg_url,
    run,
    table,
)

INIT = "20240101000000_init"
ITEMS = "20240201000000_items"
PROJECT = {
    "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
    f"prisma/migrations/{INIT}/migration.sql": (
        'CREATE TABLE "Order" (id integer PRIMARY KEY, note text NOT NULL);\n'
        'CREATE INDEX order_note ON "Order" (note);\n'
    ),
    f"prisma/migrations/{ITEMS}/migration.sql": (
        'CREATE TABLE "Item" (id integer PRIMARY KEY, "orderId" integer NOT NULL '
        'REFERENCES "Order" (id), name text NOT NULL);\n'
        'CREATE INDEX item_order ON "Item" ("orderId");\n'
    ),
    f"prisma/rollback/{ITEMS}_rollback.sql": (
        "-- backout:risk HIGH\n-- backout:impact drops Item\n"
        '-- backout:verify SELECT count(*) >= 0 FROM "Order"\nDROP TABLE "Item";\n'
    ),
}
#: CPU seconds of the children of each arm, per run
CPU: dict[str, list[float]] = {}


def _write_project(root: Path, prefix: str) -> Path:
    for rel, text in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "backout.toml").write_text(f'scratch_prefix = "{prefix}"\n', encoding="utf-8")
    return root


def _timed(label: str, args: list[str], *, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    """Wall seconds and stdout of ``args``; its CPU seconds go to ``CPU[label]``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = run(args, ok=ok)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU.setdefault(label, []).append(cpu)
    return done.seconds, done.stdout


def _clones(template: str, count: int) -> list[str]:
    names = [f"bench_fl_{uuid.uuid4().hex[:8]}_{i:02}" for i in range(count)]
    for name in names:
        pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    return names


def _drop(names: list[str]) -> None:
    for name in names:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_prefix(prefix: str) -> None:
    rows = pg_query(
        PG_ADMIN,
        "SELECT datname FROM pg_database WHERE datname LIKE %s",
        (prefix.replace("_", "\\_") + "%",),
    )
    _drop([str(r[0]) for r in rows])


def _rollback_arms(project: Path, template: str, count: int, rounds: int) -> None:
    base = backout_cmd()
    fleet, loop = f"fleet --parallel 8 ({count} databases)", f"{count} sequential runs"
    samples: dict[str, list[float]] = {fleet: [], loop: []}
    spent: list[float] = []
    for number in range(rounds):
        for arm in (fleet, loop) if number % 2 == 0 else (loop, fleet):
            names = _clones(template, count)
            try:
                if arm == fleet:
                    targets = project / "targets.txt"
                    targets.write_text("".join(pg_url(n) + "\n" for n in names))
                    seconds, out = _timed(
                        arm,
                        [
                            *base,
                            "rollback",
                            "--to",
                            INIT,
                            "--yes",
                            "--json",
                            "--targets",
                            str(targets),
                            "--parallel",
                            "8",
                            "-C",
                            str(project),
                        ],
                    )
                    document = json.loads(out)
                    assert document["counts"]["ok"] == count, document["counts"]
                    spent.append(sum(t["duration_s"] for t in document["targets"]))
                else:
                    seconds = 0.0
                    for name in names:
                        wall, _ = _timed(
                            arm,
                            [
                                *base,
                                "rollback",
                                "--to",
                                INIT,
                                "--yes",
                                "-C",
                                str(project),
                                "--url",
                                pg_url(name),
                            ],
                        )
                        seconds += wall
                    CPU[arm][-count:] = [sum(CPU[arm][-count:])]
                samples[arm].append(seconds)
                left = pg_query(pg_url(names[-1]), "SELECT to_regclass('\"Item\"') IS NULL")
                assert left == [(True,)], "the rollback did not happen"
            finally:
                _drop(names)
    f, s = median(samples[fleet]), median(samples[loop])
    rows = [
        (arm, f"{median(v):.2f}", f"{min(v):.2f}", f"{max(v):.2f}", f"{median(CPU[arm]):.2f}")
        for arm, v in samples.items()
    ]
    table(
        f"rollback over {count} databases ({rounds} round(s))",
        ("arm", "median s", "min", "max", "CPU s"),
        rows,
    )
    work = median(spent)
    print(
        f"  fleet / sequential: {f / s:.2f} ({s / f:.1f}x faster); per-target durations sum "
        f"to {work:.1f} s in the fleet: {work / f:.1f} targets at a time on average; "
        f"sequential: {s / count:.2f} s per database, fleet: {f / count:.2f} s"
    )


def _breakdown(project: Path, template: str) -> None:
    """One target alone, in process: where a rollback's time goes (phases timed in place)."""
    import backout.rollback.rollback as rollback_module
    from backout import api
    from backout.project.config import load_config

    names = _clones(template, 1)
    watch = Stopwatch()
    for name, label in (
        ("build_view", "plan (impact, checks)"),
        ("simulate", "  of which: simulation on a schema-only copy"),
        ("take_backup", "backup (pg_dump, verified)"),
    ):
        watch.watch(rollback_module, name, label)
    try:
        config = load_config(project, url=pg_url(names[0]))
        started = time.perf_counter()
        api.rollback(config, to=INIT)
        total = time.perf_counter() - started
    finally:
        watch.restore()
        _drop(names)
    rows = [(label, f"{seconds:.2f}") for label, seconds in watch.seconds.items()]
    timed = sum(v for label, v in watch.seconds.items() if not label.startswith(" "))
    rest = "the rest (connect, lock, transaction, history, hooks)"
    rows.append((rest, f"{total - timed:.2f}"))
    rows.append(("one rollback, in process", f"{total:.2f}"))
    table("where one target's rollback spends its time (alone)", ("phase", "s"), rows)


def _schemas(url: str, project: Path, count: int) -> Path:
    """``count`` tenant schemas migrated like the first (which backout migrates)."""
    first = f"{url}?schema=tenant_000"
    run([*backout_cmd(), "up", "-C", str(project), "--url", first])
    statements = []
    for i in range(1, count):
        s = f"tenant_{i:03}"
        statements += [
            f"CREATE SCHEMA {s}",
            f'CREATE TABLE {s}."Order" (LIKE tenant_000."Order" INCLUDING ALL)',
            f'CREATE TABLE {s}."Item" (LIKE tenant_000."Item" INCLUDING ALL)',
            f"CREATE TABLE {s}._prisma_migrations (LIKE tenant_000._prisma_migrations "
            "INCLUDING ALL)",
            f"INSERT INTO {s}._prisma_migrations SELECT * FROM tenant_000._prisma_migrations",
        ]
    pg_exec(url, *statements)
    targets = project / "schemas.txt"
    targets.write_text(
        f"base = {url}\n"
        "query = SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1\n"
    )
    return targets


def _status_arms(project: Path, template: str, rounds: int) -> None:
    base = backout_cmd()
    name = f"bench_fl_{uuid.uuid4().hex[:8]}_s"
    pg_admin(f'CREATE DATABASE "{name}"')
    try:
        url = pg_url(name)
        targets = _schemas(url, project, 200)
        arms = {
            "backout status --url (1 schema)": [
                *base,
                "status",
                "-C",
                str(project),
                "--url",
                f"{url}?schema=tenant_000",
            ],
            "status --targets (200 schemas)": [
                *base,
                "status",
                "-C",
                str(project),
                "--targets",
                str(targets),
            ],
            "status --targets --parallel 8": [
                *base,
                "status",
                "-C",
                str(project),
                "--targets",
                str(targets),
                "--parallel",
                "8",
            ],
        }
        for label, args in arms.items():
            _timed(label, args)  # once untimed: bytecode, verdict cache
            CPU[label].clear()
        samples: dict[str, list[float]] = {label: [] for label in arms}
        for number in range(max(rounds, 3)):
            order = list(arms)[number % 3 :] + list(arms)[: number % 3]
            for label in order:
                samples[label].append(_timed(label, arms[label])[0])
        rows = []
        for label, values in samples.items():
            m = median(values)
            note = ""
            if "200" in label or "parallel" in label:
                note = "target < 2 s: " + ("met" if m < 2 else "NOT met")
            rows.append(
                (
                    label,
                    f"{m:.2f}",
                    f"{min(values):.2f}",
                    f"{max(values):.2f}",
                    f"{median(CPU[label]):.2f}",
                    note,
                )
            )
        table(
            "status over 200 tenant schemas", ("arm", "median s", "min", "max", "CPU s", ""), rows
        )
    finally:
        _drop([name])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 databases, 1 round")
    parser.add_argument("--databases", type=int, help="databases for the rollback (default 50)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3)")
    parser.add_argument("--only", choices=("rollback", "status"), help="one of the two")
    args = parser.parse_args()
    count = args.databases or (12 if args.quick else 50)
    rounds = args.rounds or (1 if args.quick else 3)
    os.environ.pop("DATABASE_URL", None)
    print(f"machine: {machine_facts()}")
    prefix = f"bench_{uuid.uuid4().hex[:8]}_"
    with tempfile.TemporaryDirectory(prefix="backout-bench-") as folder:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(folder) / "pycache")
        project = _write_project(Path(folder) / "app", prefix)

        def build(url: str) -> None:
            run([*backout_cmd(), "up", "-C", str(project), "--url", url])
            pg_exec(
                url,
                "INSERT INTO \"Order\" SELECT i, 'o' || i FROM generate_series(1, 500) i",
                "INSERT INTO \"Item\" SELECT i, 1 + i % 500, 'i' || i "
                "FROM generate_series(1, 2000) i",
                "VACUUM ANALYZE",
            )

        try:
            with pg_template(build, label="fleet") as template:
                if args.only in (None, "rollback"):
                    _breakdown(project, template)
                    _rollback_arms(project, template, count, rounds)
                if args.only in (None, "status"):
                    _status_arms(project, template, rounds)
        finally:
            _drop_prefix(prefix)


if __name__ == "__main__":
    main()
