"""Interop with the real Prisma 6 CLI: after ``backout up`` of a real corpus holding Prisma's
``BEGIN; … COMMIT;`` enum template and ``CREATE INDEX CONCURRENTLY`` (journaled by backout),
``prisma migrate status`` agrees that the database is up to date (same checksums, every row
finished).

Needs ``../shared/tools/prisma6`` (``$BACKOUT_PRISMA6_TOOLS``) and npm (its set-up installs
prisma@6.19.3 into a temporary folder, ~10 s; ``$BACKOUT_PRISMA6_DIR`` reuses an install). Read
that README's limits: only ``migrate status`` is used here, which runs no migration SQL.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.corpora import corpus, migration_folders
from tests.helpers import REPO, run

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCHEMA = 'datasource db {\n  provider = "postgresql"\n  url      = env("DATABASE_URL")\n}\n'


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: must run, not skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def prisma6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where ``npx prisma`` is the real Prisma 6 CLI (set up once per session)."""
    tools = Path(os.environ.get("BACKOUT_PRISMA6_TOOLS") or REPO.parent / "shared/tools/prisma6")
    if not (tools / "setup.sh").is_file():
        _missing(f"the Prisma 6 tools are not at {tools}")
    if shutil.which("npm") is None:
        _missing("npm is not installed")
    target = Path(os.environ.get("BACKOUT_PRISMA6_DIR") or tmp_path_factory.mktemp("prisma6"))
    done = subprocess.run(
        ["bash", str(tools / "setup.sh"), str(target)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not (target / "node_modules" / "prisma").is_dir():
        _missing(f"Prisma 6 set-up failed: {(done.stderr or done.stdout)[-500:]}")
    return target


def prisma_status(home: Path, url: str) -> subprocess.CompletedProcess[str]:
    """``npx prisma migrate status`` in ``home`` with the env.sh the set-up wrote."""
    env = dict(os.environ)
    for line in (home / "env.sh").read_text().splitlines():
        match = re.match(r"export (\w+)=(.*)$", line)
        if match and " " not in match[2]:
            env[match[1]] = match[2]
    env["PRISMA_HIDE_UPDATE_MESSAGE"] = "1"
    env["CHECKPOINT_DISABLE"] = "1"
    env["DATABASE_URL"] = url
    return subprocess.run(
        ["npx", "prisma", "migrate", "status"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_prisma_migrate_status_agrees_after_backout_up(
    prisma6: Path, tmp_path: Path, pg_url: str
) -> None:
    root = corpus("trigger.dev")
    folders = migration_folders(root)
    # a prefix of the corpus that ends with its first CONCURRENTLY migration (journaled)
    first = next(
        i for i, f in enumerate(folders) if "CONCURRENTLY" in (f / "migration.sql").read_text()
    )
    chosen = folders[: first + 1]
    assert any("BEGIN;" in (f / "migration.sql").read_text() for f in chosen)

    # a private copy of Prisma's home: its prisma/ folder holds only the chosen migrations
    home = tmp_path / "p6"
    home.mkdir()
    for entry in prisma6.iterdir():
        if entry.name == "prisma":
            continue
        if entry.is_dir():
            (home / entry.name).symlink_to(entry)
        else:  # a copy: prisma.config.ts finds prisma/ beside its real path
            shutil.copy(entry, home / entry.name)
    migrations = home / "prisma" / "migrations"
    migrations.mkdir(parents=True)
    (home / "prisma" / "schema.prisma").write_text(SCHEMA)
    shutil.copy(root / "prisma/migrations/migration_lock.toml", migrations)
    for folder in chosen:
        shutil.copytree(folder, migrations / folder.name)

    result = run(["up", "--to", chosen[-1].name], project=root, url=pg_url)
    assert result.exit_code == 0, result.stderr
    assert "1 migration(s) ran journaled" in result.stdout

    status = prisma_status(home, pg_url)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"{len(chosen)} migrations found" in status.stdout
    assert "Database schema is up to date!" in status.stdout
