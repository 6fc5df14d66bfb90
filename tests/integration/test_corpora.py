"""Real Prisma projects, as shipped: every migration of each corpus applies with ``backout up``
and leaves exactly the schema ``psql -f`` leaves, with Prisma's own ledger rows (issue #11 §1).

The corpora (``../shared/corpora``, see tests/corpora.py) hold Prisma's enum template
(``BEGIN; … COMMIT;``), ``CREATE/DROP INDEX CONCURRENTLY`` and ``DO`` blocks. The reference is
``psql -X -v ON_ERROR_STOP=1 -f`` of every file in order, in a second database; the oracles are
a normalised ``pg_dump --schema-only`` and backout's schema fingerprint.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.corpora import CORPORA, corpus, migration_folders
from tests.helpers import db_state, run, sql

pytestmark = pytest.mark.postgres


@pytest.fixture
def reference_url(pg_admin_url: str) -> Iterator[str]:
    """A second new, empty database (the ``psql -f`` reference); dropped afterwards."""
    import psycopg

    name = f"backout_t_ref_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def psql_files(url: str, files: list[Path]) -> None:
    """``psql -f`` of each file in order, one session, stopping at the first error."""
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]
    for path in files:
        args += ["-f", str(path)]
    # durability does not matter for a throwaway reference; its speed does
    env = {**os.environ, "PGOPTIONS": "-c synchronous_commit=off"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def schema_only(url: str) -> str:
    """``pg_dump --schema-only`` without comments, settings, ``\\restrict`` and history."""
    done = subprocess.run(
        [
            "pg_dump",
            "--schema-only",
            "--no-owner",
            "--exclude-schema=backout",
            "--exclude-table=*._prisma_migrations",
            "-d",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    kept = [
        line
        for line in done.stdout.splitlines()
        if line.strip()
        and not line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict"))
        and not line.startswith("\\unrestrict")
    ]
    return "\n".join(kept)


@pytest.mark.parametrize("name", list(CORPORA))
def test_corpus_applies_as_shipped_like_psql(name: str, pg_url: str, reference_url: str) -> None:
    root = corpus(name)
    folders = migration_folders(root)
    assert len(folders) == CORPORA[name]
    files = [folder / "migration.sql" for folder in folders]

    result = run(["up"], project=root, url=pg_url)
    assert result.exit_code == 0, result.stderr
    assert f"Applied {len(folders)} migration(s)" in result.stdout

    psql_files(reference_url, files)
    assert schema_only(pg_url) == schema_only(reference_url)
    assert db_state(pg_url).schema == db_state(reference_url).schema

    rows = sql(
        pg_url,
        "SELECT migration_name, checksum, finished_at IS NOT NULL, logs, rolled_back_at, "
        "applied_steps_count FROM _prisma_migrations ORDER BY started_at, migration_name",
    )
    expected = [
        (f.parent.name, hashlib.sha256(f.read_bytes()).hexdigest(), True, None, None, 1)
        for f in files
    ]
    assert rows == expected
    # nothing edited, failed or left part-way: a database Prisma deployed would read the same
    status = run(["status"], project=root, url=pg_url)
    assert status.exit_code == 0, status.stdout
    assert run(["up"], project=root, url=pg_url).stdout.startswith("Nothing to apply")
