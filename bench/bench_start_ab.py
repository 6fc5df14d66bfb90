"""Issue 14: two versions of backout, interleaved in one run, each next to the floor.

    python bench/bench_start_ab.py OTHER_SRC [--rounds 9]

``OTHER_SRC`` is the ``src`` folder of another checkout (e.g. the branch point:
``git archive BASE src | tar -x -C /tmp/base``): its arms run with ``PYTHONPATH=OTHER_SRC``.
On a shared, loaded machine, ``bench_start.py`` run once per version compares two moments
of load; here every round runs the floor (``python -c "import psycopg"``) and both versions'
``status``, ``plan``, ``plan --no-simulate`` and ``rollback --backup none`` (on a fresh copy of
the database), the order rotating each round, and each arm's time is taken above the floor
of its own round. Each version has its own copy of the vouchers project (their saved script
verdicts differ: a shared cache would be judged again on every switch). CPU seconds (user +
system of the command and what it waits for) are shown beside wall seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PG_ADMIN,
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

PY = sys.executable
FLOOR = "floor: python -c 'import psycopg'"
ROLLBACK = ("rollback", "--backup", "none", "--i-accept-data-loss", "--yes")


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``args``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = run(args, ok=(0, 1), env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done.seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _arms(projects: dict[str, Path], url: str) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """(label, version, backout arguments); the floor has no version."""
    yield FLOOR, "", ()
    for version, project in projects.items():
        where = ("-C", str(project), "--url", url)
        yield f"status ({version})", version, ("status", *where)
        yield f"plan ({version})", version, ("plan", *where)
        yield f"plan --no-simulate ({version})", version, ("plan", "--no-simulate", *where)
        yield f"rollback --backup none ({version})", version, (*ROLLBACK, "-C", str(project))


def _one(
    template: str, version: str, args: tuple[str, ...], env: dict[str, str]
) -> tuple[float, float]:
    if not version:
        return _timed([PY, "-c", "import psycopg"], env)
    if args[0] == "rollback":
        with pg_clone(template) as fresh:
            return _timed([PY, "-m", "backout", *args, "--url", fresh], env)
    return _timed([PY, "-m", "backout", *args], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("other_src", type=Path, help="the src folder of the other version")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    os.environ.pop("DATABASE_URL", None)
    print(f"machine: {machine_facts()}")
    prefix = f"bench_{uuid.uuid4().hex[:8]}_"
    samples: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="backout-bench-") as folder:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(folder) / "pycache")
        here = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        envs = {"": here, "this": here, "other": {**here, "PYTHONPATH": str(args.other_src)}}
        projects = {}
        for version in ("other", "this"):
            (Path(folder) / version).mkdir()
            projects[version] = copy_example("vouchers", Path(folder) / version)
            (projects[version] / "backout.toml").write_text(f'scratch_prefix = "{prefix}"\n')

        def build(url: str) -> None:
            run([PY, "-m", "backout", "up", "-C", str(projects["this"]), "--url", url])
            run([PY, "-m", "backout.demo.sampledata", "vouchers", url, "--scale", "200"])
            run([*psql_cmd(url), "-c", "VACUUM ANALYZE"])

        try:
            with pg_template(build, label="ab") as template, pg_clone(template) as url:
                arms = list(_arms(projects, url))
                for round_ in range(args.rounds + 1):  # round 0 warms up: bytecode, caches
                    turn = round_ % len(arms)
                    for label, version, argv in arms[turn:] + arms[:turn]:
                        measured = _one(template, version, argv, envs[version])
                        if round_:
                            samples.setdefault(label, []).append(measured)
        finally:
            pattern = prefix.replace("_", "\\_") + "%"
            for (name,) in pg_query(
                PG_ADMIN, "SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,)
            ):
                pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _report(samples, args.rounds)


def _report(samples: dict[str, list[tuple[float, float]]], rounds: int) -> None:
    floor = samples[FLOOR]
    rows: list[tuple[object, ...]] = [
        (
            FLOOR,
            f"{median([w for w, _ in floor]):.3f}",
            "",
            f"{median([c for _, c in floor]):.3f}",
            "",
        )
    ]
    for label, values in sorted(samples.items()):
        if label == FLOOR:
            continue
        wall = [w - f for (w, _), (f, _) in zip(values, floor, strict=True)]
        cpu = [c - f for (_, c), (_, f) in zip(values, floor, strict=True)]
        rows.append(
            (
                label,
                f"{median(wall):+.3f}",
                f"{min(wall):+.3f}..{max(wall):+.3f}",
                f"{median(cpu):+.3f}",
                f"{min(cpu):+.3f}",
            )
        )
    table(
        f"above the floor of the same round, seconds, median of {rounds}",
        ("what", "wall", "wall min..max", "CPU", "CPU min"),
        rows,
    )


if __name__ == "__main__":
    main()
