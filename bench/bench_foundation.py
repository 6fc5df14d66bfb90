"""Issue 2 benchmarks: start-up, `status` over 1,000 migrations, `up` of 200 vs psql.

    python bench/bench_foundation.py            # all
    python bench/bench_foundation.py --quick    # fewer repetitions

Targets: `backout --help` < 150 ms; `status` with 1,000 migrations < 0.5 s (SQLite and
PostgreSQL); `up` of 200 migrations within 10 % of `psql -1 -f` run file by file.
Side by side: `alembic current` and `alembic history` over 1,000 revisions (pip install
'.[bench]').
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import backout_cmd, pg_database, plain_project, report, sh, timed


def bench_startup(repeat: int) -> None:
    python = timed(lambda: sh([sys.executable, "-c", "pass"]), repeat)
    help_ = timed(lambda: sh([*backout_cmd(), "--help"]), repeat)
    report(
        "start-up (median wall time)",
        [
            ("python -c pass (baseline)", python, ""),
            ("backout --help", help_, f"target < 150 ms; {help_ / python:.1f}x bare python"),
        ],
    )


def bench_status(tmp: Path, repeat: int) -> None:
    project = plain_project(tmp / "status", 1000)
    sqlite_url = f"sqlite:///{tmp / 'status.db'}"
    sh([*backout_cmd(), "up", "-C", str(project), "--url", sqlite_url])
    rows = [
        (
            "backout status, 1000 applied, SQLite",
            timed(
                lambda: sh([*backout_cmd(), "status", "-C", str(project), "--url", sqlite_url]),
                repeat,
            ),
            "target < 500 ms",
        )
    ]
    with pg_database() as url:
        sh([*backout_cmd(), "up", "-C", str(project), "--url", url])
        rows.append(
            (
                "backout status, 1000 applied, PostgreSQL",
                timed(
                    lambda: sh([*backout_cmd(), "status", "-C", str(project), "--url", url]), repeat
                ),
                "target < 500 ms",
            )
        )
    rows.extend(_alembic(tmp, repeat))
    report("status over 1,000 migrations", rows)


def _alembic(tmp: Path, repeat: int) -> list[tuple[str, float, str]]:
    alembic = Path(sys.executable).parent / "alembic"
    if not alembic.exists():
        return [("alembic (not installed: pip install '.[bench]')", 0.0, "skipped")]
    root = tmp / "alembic"
    sh([str(alembic), "init", str(root / "alembic")], cwd=tmp)
    versions = root / "alembic" / "versions"
    previous = None
    for i in range(1, 1001):
        rev = f"{i:012x}"
        down = f"'{previous}'" if previous else "None"
        (versions / f"{rev}_t{i}.py").write_text(
            f"revision = '{rev}'\ndown_revision = {down}\nbranch_labels = None\n"
            "depends_on = None\nfrom alembic import op\n"
            f"def upgrade():\n    op.execute('CREATE TABLE t{i} (id INTEGER PRIMARY KEY)')\n"
            f"def downgrade():\n    op.execute('DROP TABLE t{i}')\n"
        )
        previous = rev
    ini = root / "alembic.ini"
    lines = []
    for original in (tmp / "alembic.ini").read_text().splitlines():
        line = original
        if line.startswith("script_location"):
            line = "script_location = alembic"
        elif line.startswith("sqlalchemy.url"):
            line = f"sqlalchemy.url = sqlite:///{root / 'alembic.db'}"
        lines.append(line)
    ini.write_text("\n".join(lines) + "\n")
    sh([str(alembic), "-c", str(ini), "upgrade", "head"], cwd=root)
    current = timed(lambda: sh([str(alembic), "-c", str(ini), "current"], cwd=root), repeat)
    history = timed(lambda: sh([str(alembic), "-c", str(ini), "history"], cwd=root), repeat)
    return [
        ("alembic current, 1000 revisions, SQLite (peer)", current, ""),
        ("alembic history, 1000 revisions (peer)", history, ""),
    ]


def bench_up(tmp: Path, repeat: int) -> None:
    project = plain_project(tmp / f"up{repeat}", 200, with_rollbacks=False)
    files = sorted((project / "migrations").glob("*.up.sql"))
    psql = shutil.which("psql")
    if psql is None:
        print("psql not found: skipping the up benchmark")
        return
    backout_times, psql_times = [], []
    for _ in range(repeat):
        with pg_database() as url:
            backout_times.append(
                timed(
                    lambda url=url: sh([*backout_cmd(), "up", "-C", str(project), "--url", url]), 1
                )
            )
        with pg_database() as url:

            def run_psql(url: str = url) -> None:
                for path in files:
                    sh([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(path), url])

            psql_times.append(timed(run_psql, 1))
    single = tmp / f"all{repeat}.sql"
    single.write_text("".join(f"BEGIN;\n{path.read_text()}COMMIT;\n" for path in files))
    session_times = []
    for _ in range(repeat):
        with pg_database() as url:
            session_times.append(
                timed(
                    lambda url=url: sh(
                        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(single), url]
                    ),
                    1,
                )
            )

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    b, p, one = median(backout_times), median(psql_times), median(session_times)
    report(
        "up of 200 migrations, PostgreSQL (median of fresh databases)",
        [
            ("psql -1 -f, file by file (the issue's baseline)", p, ""),
            ("psql, one session, BEGIN/COMMIT per file (no history)", one, "stricter baseline"),
            (
                "backout up (history, lock, per-statement errors)",
                b,
                f"{(b / p - 1) * 100:+.0f}% vs psql loop (target < +10%); "
                f"{(b / one - 1) * 100:+.0f}% vs one psql session",
            ),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="backout-bench-") as folder:
        tmp = Path(folder)
        os.environ.pop("DATABASE_URL", None)
        bench_startup(repeat * 3)
        bench_status(tmp, repeat)
        bench_up(tmp, 3 if args.quick else 5)


if __name__ == "__main__":
    main()
