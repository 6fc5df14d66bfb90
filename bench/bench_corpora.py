"""Pass rates of backout on real Prisma projects, per corpus (issue 11).

For each corpus under ``<repo>/../shared/corpora`` (``BACKOUT_CORPORA`` overrides; the files are
read in place, never copied), on a fresh PostgreSQL database each:

1. ``up`` as shipped: the share of migrations ``backout up`` applies (it stops at the first one
   it refuses or that fails, so the rest count as not applied);
2. ``generate`` with no error: a draft for every migration, in one call, written to a temporary
   rollback folder; a draft counts when it neither fails on the scratch copy nor leaves residual
   schema differences;
3. ``test --all`` passed: those drafts rehearsed up → rollback → up from an empty database;
4. ``test --all --with-data``: the same with sample rows; counted as the share of migrations the
   walk reached (findings such as "fails on a non-empty table" do not stop it).

Every failure is listed with its first message, so they can be sorted into classes
(docs/real-projects.md)::

    python bench/bench_corpora.py [--quick] [--only umami,hoppscotch] [--skip-data]

``--quick`` uses the first 60 migrations of each corpus.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import pg_database

from backout import api
from backout.model.errors import BackoutError
from backout.project.config import load_config
from backout.run.status import State
from backout.run.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent


def corpora_root() -> Path:
    """The corpora folder: ``BACKOUT_CORPORA``, else ``<repo>/../shared/corpora``."""
    return Path(os.environ.get("BACKOUT_CORPORA") or REPO.parent / "shared" / "corpora")


@contextmanager
def corpus_project(migrations: Path, limit: int | None) -> Iterator[Path]:
    """A temporary project whose ``migrations_dir`` is the corpus folder itself (read in place)
    and whose rollbacks go to a temporary folder. With ``limit``, a folder of symlinks to the
    first ``limit`` migrations stands in for the corpus."""
    with tempfile.TemporaryDirectory(prefix="backout-corpus-") as tmp:
        root = Path(tmp)
        source = migrations
        if limit is not None:
            source = root / "migrations"
            source.mkdir()
            for folder in sorted(p for p in migrations.iterdir() if p.is_dir())[:limit]:
                (source / folder.name).symlink_to(folder)
            shutil.copy(migrations / "migration_lock.toml", source / "migration_lock.toml")
        (root / "rollback").mkdir()
        (root / "backout.toml").write_text(
            f'layout = "prisma"\nmigrations_dir = "{source}"\n'
            f'rollback_dir = "{root / "rollback"}"\nbackup_dir = "{root / "backups"}"\n'
        )
        yield root


def _pct(n: int, total: int) -> str:
    return f"{n}/{total} = {100.0 * n / total:5.1f} %" if total else "n/a"


def measure(name: str, migrations: Path, limit: int | None, with_data: bool) -> dict[str, str]:
    """The four pass rates of one corpus; failures printed as they are found."""
    rates: dict[str, str] = {}
    with corpus_project(migrations, limit) as root:
        with pg_database() as url:
            config = load_config(root, url=url)
            ids = [m.id for m in Workspace.open(config).project.migrations]
            total = len(ids)
            started = time.perf_counter()
            try:
                applied = len(api.up(config).applied)
            except BackoutError as exc:
                applied = len(api.status(config).report.by_state(State.APPLIED))
                print(f"  [{name}] up stopped: {str(exc).splitlines()[0]}")
            rates["up"] = _pct(applied, total)
            print(f"  [{name}] up {time.perf_counter() - started:.1f} s")
        with pg_database() as url:
            config = load_config(root, url=url)
            started = time.perf_counter()
            drafts = api.generate(config, ids, force=True)
            good = 0
            for draft in drafts:
                if draft.error or draft.residual:
                    print(f"  [{name}] generate {draft.migration}: {draft.error or draft.residual}")
                else:
                    good += 1
            rates["generate"] = _pct(good, total)
            print(f"  [{name}] generate {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            report = api.test(config, all_=True, with_smoke=False)
            passed = sum(1 for m in report.migrations if m.ok)
            for m in report.migrations:
                if not m.ok:
                    first = m.failures[0] if m.failures else None
                    print(
                        f"  [{name}] test {m.id}: {first.kind if first else m.status}: "
                        f"{(first.message if first else '').splitlines()[0:1]}"
                    )
            rates["test --all"] = _pct(passed, total)
            print(f"  [{name}] test --all {time.perf_counter() - started:.1f} s")
            if with_data:
                started = time.perf_counter()
                report = api.test(config, all_=True, with_smoke=False, with_data=True)
                reached = sum(1 for m in report.migrations if m.status != "not_run")
                for m in report.migrations:
                    if not m.ok and m.status != "not_run":
                        first = m.failures[0] if m.failures else None
                        print(
                            f"  [{name}] with-data {m.id}: {first.kind if first else m.status}: "
                            f"{(first.message if first else '').splitlines()[0:1]}"
                        )
                rates["test --all --with-data reached"] = _pct(reached, total)
                rates["test --all --with-data passed"] = _pct(
                    sum(1 for m in report.migrations if m.ok), total
                )
                print(f"  [{name}] test --all --with-data {time.perf_counter() - started:.1f} s")
    return rates


def main() -> int:
    """Measure every corpus and print a table of pass rates."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="first 60 migrations per corpus")
    parser.add_argument("--only", default="", help="comma-separated corpus names")
    parser.add_argument("--skip-data", action="store_true", help="no --with-data walk")
    args = parser.parse_args()
    root = corpora_root()
    if not root.is_dir():
        print(f"no corpora at {root} (set BACKOUT_CORPORA)", file=sys.stderr)
        return 2
    wanted = {n for n in args.only.split(",") if n}
    results: dict[str, dict[str, str]] = {}
    for corpus in sorted(p for p in root.iterdir() if p.is_dir()):
        if wanted and corpus.name not in wanted:
            continue
        migrations = corpus / "prisma" / "migrations"
        print(f"== {corpus.name}")
        results[corpus.name] = measure(
            corpus.name, migrations, 60 if args.quick else None, not args.skip_data
        )
    print("\n== pass rates")
    for name, rates in results.items():
        for what, rate in rates.items():
            print(f"  {name:<12} {what:<34} {rate}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
