"""`backout lint` over 1,000 plain-layout migrations, next to baselines from the same run.

    python bench/bench_lint.py            # all
    python bench/bench_lint.py --quick    # fewer repetitions

Target: `lint` of 1,000 migrations (create table + index + insert, each with a rollback) well
under 2 s. Baselines: loading the project alone (`load_project`: reading files, directives),
and splitting + analysing every script (what lint cannot avoid), so the ratios say how much
the rules themselves cost. Measured in-process (the library) and as the installed command.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import backout_cmd, plain_project, report, timed

if TYPE_CHECKING:
    from backout.dialects.base import Dialect


def _lint_cmd() -> list[str]:
    """``backout lint``; before the command is registered, the module registers it itself."""
    done = subprocess.run([*backout_cmd(), "lint", "--help"], capture_output=True, check=False)
    if done.returncode == 0:
        return [*backout_cmd(), "lint"]
    code = "import backout.cli.lint; from backout.cli import main; main()"
    return [sys.executable, "-c", code, "lint"]


def _run(argv: list[str]) -> None:
    """Run lint; exit 1 (findings) is fine, anything else is not."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")


def _dialect(name: str) -> Dialect:
    from backout.dialects import dialect_for
    from backout.model.urls import DatabaseURL

    return dialect_for(DatabaseURL(raw="", dialect=name))


def _split_and_analyse(root: Path, dialect: Dialect) -> Callable[[], None]:
    """What lint cannot avoid: load the project, split and analyse every script."""
    from backout.project.layouts import load_project

    def work() -> None:
        for migration in load_project(root).migrations:
            for script in (migration.up, migration.down):
                if script is not None:
                    dialect.analyze(dialect.split(script.text, script.display))

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--count", type=int, default=1000, help="number of migrations")
    args = parser.parse_args()
    repeat = 3 if args.quick else 5

    from backout.lint.linter import lint
    from backout.project.config import load_config
    from backout.project.layouts import load_project

    urls = {"sqlite": "sqlite:///bench.db", "postgresql": "postgresql://bench@127.0.0.1:1/db"}
    with tempfile.TemporaryDirectory() as tmp:
        root = plain_project(Path(tmp) / "project", args.count)
        rows: list[tuple[str, float, str]] = []
        load = timed(lambda: load_project(root), repeat)
        rows.append((f"load_project, {args.count} migrations (baseline)", load, "1.0x"))
        for name, url in urls.items():
            config = load_config(root, environ={}, url=url)
            # warm the imports (sqlglot, pglast) outside the timings
            lint(config, check_database=False, squawk=False)
            analysed = timed(_split_and_analyse(root, _dialect(name)), repeat)
            rows.append(
                (
                    f"load + split + analyse, serial ({name})",
                    analysed,
                    f"{analysed / load:.1f}x load",
                )
            )
            linted = timed(
                functools.partial(lint, config, check_database=False, squawk=False), repeat
            )
            rows.append(
                (
                    f"lint ({name}), library",
                    linted,
                    f"target < 2 s; {linted / load:.1f}x load, {linted / analysed:.2f}x analyse",
                )
            )
        argv = [*_lint_cmd(), "-C", str(root), "--offline", "--no-squawk"]
        command = timed(lambda: _run(argv), repeat)
        rows.append(
            ("backout lint (sqlite), command", command, f"target < 2 s; {command / load:.1f}x load")
        )
        report(f"lint over {args.count} migrations (median wall time)", rows)


if __name__ == "__main__":
    main()
