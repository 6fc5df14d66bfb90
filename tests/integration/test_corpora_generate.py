"""Real Prisma projects: drafts from ``backout generate`` pass ``backout test --all``, and the
rehearsal with sample rows reaches the end (issue #11 §2, §3).

A proportionate sample: the two small corpora whole, and the first migrations of the large one
(its constructs recur; the whole corpus is measured by bench/bench_corpora.py). The corpus is
read in place: the project's ``backout.toml`` points at it, the drafts go to a temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import backout.cli.rehearse  # noqa: F401  (registers check/test/generate)
from tests.corpora import corpus, migration_folders
from tests.helpers import run

pytestmark = pytest.mark.postgres

#: corpus → how many of its first migrations the sample takes (None: all)
SAMPLE = {"umami": None, "hoppscotch": None, "trigger.dev": 40}


def sample_project(tmp_path: Path, name: str, count: int | None) -> tuple[Path, list[str]]:
    """A project over the first ``count`` migrations of corpus ``name`` (symlinks, not copies)."""
    source = corpus(name) / "prisma" / "migrations"
    folders = migration_folders(corpus(name))[:count]
    root = tmp_path / name
    migrations = root / "migrations"
    migrations.mkdir(parents=True)
    for folder in folders:
        (migrations / folder.name).symlink_to(folder)
    (migrations / "migration_lock.toml").symlink_to(source / "migration_lock.toml")
    (root / "rollback").mkdir()
    (root / "backout.toml").write_text(
        'layout = "prisma"\nmigrations_dir = "migrations"\nrollback_dir = "rollback"\n'
    )
    return root, [f.name for f in folders]


@pytest.mark.parametrize("name", list(SAMPLE))
def test_corpus_drafts_pass_and_the_data_walk_reaches_the_end(
    name: str, tmp_path: Path, pg_url: str
) -> None:
    root, ids = sample_project(tmp_path, name, SAMPLE[name])
    generated = run(["generate", *ids], project=root, url=pg_url)
    assert generated.exit_code == 0, generated.output
    assert sorted(p.name for p in (root / "rollback").iterdir()) == sorted(
        f"{i}_rollback.sql" for i in ids
    )
    result = run(["test", "--all", "--no-smoke", "--json"], project=root, url=pg_url)
    doc = json.loads(result.stdout)
    failed = {m["id"]: m["failures"] for m in doc["migrations"] if m["status"] != "passed"}
    assert failed == {}, failed
    assert result.exit_code == 0
    with_data = run(
        ["test", "--all", "--with-data", "--no-smoke", "--json"], project=root, url=pg_url
    )
    doc = json.loads(with_data.stdout)
    assert [m["id"] for m in doc["migrations"]] == ids
    assert not [m["id"] for m in doc["migrations"] if m["status"] == "not_run"], doc["summary"]
