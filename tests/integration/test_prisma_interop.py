"""Issue 13, items 4 and 5, side by side with the real Prisma 6 CLI.

The CLI is installed from the npm registry (pinned: prisma@6.19.3 and @prisma/adapter-pg@6.19.3)
by ``<repo>/../shared/tools/prisma6/setup.sh``, once per session. Without npm or the registry
these tests skip on a developer machine and fail with ``CI`` set.

4. A migration Prisma recorded as failed (always "0 steps") may have left statements applied:
   ``status`` compares the database with the migration and says which are there.
5. While ``prisma migrate deploy`` applies a migration (its row unfinished, Prisma's advisory
   lock 72707369 held), ``status`` says "being applied" naming the holder and ``up`` exits 3.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, db_state, run, sql, write

SETUP = REPO.parent / "shared" / "tools" / "prisma6" / "setup.sh"

SCHEMA = """
    datasource db {
      provider = "postgresql"
      url      = env("DATABASE_URL")
    }
"""
INIT = 'CREATE TABLE "User" ("id" SERIAL PRIMARY KEY, "email" TEXT NOT NULL)\n'


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: the Prisma interop tests must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def prisma6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the real Prisma 6 CLI installed (node_modules, env.sh, prisma.config.ts)."""
    if not SETUP.is_file():
        _unavailable(f"{SETUP} not found")
    if shutil.which("npm") is None:
        _unavailable("npm is not installed")
    folder = tmp_path_factory.mktemp("prisma6")
    done = subprocess.run(
        ["bash", str(SETUP), str(folder)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0 or not (folder / "node_modules" / "prisma").is_dir():
        _unavailable(f"Prisma 6 could not be set up: {done.stderr.strip()[-300:]}")
    return folder


def prisma_project(tmp_path: Path, prisma6: Path, migrations: dict[str, str]) -> Path:
    """A Prisma project runnable by both tools (node_modules shared with the install)."""
    root = tmp_path / "app"
    files = {"prisma/schema.prisma": SCHEMA}
    for name, text in migrations.items():
        files[f"prisma/migrations/{name}/migration.sql"] = text
    write(root, files)
    (root / "prisma" / "migrations" / "migration_lock.toml").write_text('provider = "postgresql"\n')
    for name in ("package.json", "prisma.config.ts"):
        shutil.copy(prisma6 / name, root / name)
    (root / "node_modules").symlink_to(prisma6 / "node_modules")
    return root


def prisma(prisma6: Path, root: Path, url: str, *args: str) -> subprocess.Popen[str]:
    """Start ``npx prisma ARGS`` in ``root`` against ``url``."""
    command = f'. "{prisma6}/env.sh" && exec npx prisma {" ".join(args)}'
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.Popen(
        ["bash", "-c", command],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_status_lists_what_a_prisma_failure_left(
    tmp_path: Path, prisma6: Path, pg_url: str
) -> None:
    root = prisma_project(
        tmp_path,
        prisma6,
        {
            "20250101000000_init": INIT,
            "20250102000000_nickname": (
                'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\n'
                'ALTER TABLE "Nope" ADD COLUMN "flag" INTEGER;\n'
            ),
        },
    )
    deploy = prisma(prisma6, root, pg_url, "migrate", "deploy")
    output, _ = deploy.communicate(timeout=180)
    assert deploy.returncode != 0, output
    (row,) = sql(
        pg_url,
        "SELECT applied_steps_count, finished_at FROM _prisma_migrations "
        "WHERE migration_name = '20250102000000_nickname'",
    )
    assert row == (0, None)  # what Prisma records: 0 steps, unfinished
    columns = sql(
        pg_url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'User'",
    )
    assert ("nickname",) in columns  # ...yet the first statement stayed applied
    before = db_state(pg_url)

    result = run(["status"], project=root, url=pg_url)
    assert result.exit_code == 1, result.output
    assert "no change of it remains" not in result.output
    assert "backout did not record this failure" in result.output
    assert 'line 1: ALTER TABLE "User" ADD COLUMN "nickname" TEXT: applied' in result.output
    assert 'column "User"."nickname" present' in result.output
    assert 'line 2: ALTER TABLE "Nope" ADD COLUMN "flag" INTEGER: not applied' in result.output

    document = json.loads(run(["status", "--json"], project=root, url=pg_url).stdout)
    failed = next(m for m in document["migrations"] if m["state"] == "failed")
    assert failed["remains"]["nothing_remains"] is False
    assert [s["verdict"] for s in failed["remains"]["statements"]] == ["applied", "not applied"]
    assert db_state(pg_url) == before


def test_a_migration_prisma_is_applying_is_not_failed(
    tmp_path: Path, prisma6: Path, pg_url: str
) -> None:
    root = prisma_project(
        tmp_path,
        prisma6,
        {
            "20250101000000_init": INIT,
            "20250102000000_slow": "SELECT pg_sleep(20)\n",
        },
    )
    deploy = prisma(prisma6, root, pg_url, "migrate", "deploy")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rows = sql(
                pg_url,
                "SELECT 1 FROM pg_tables WHERE tablename = '_prisma_migrations'",
            ) and sql(
                pg_url,
                "SELECT 1 FROM _prisma_migrations WHERE migration_name = "
                "'20250102000000_slow' AND finished_at IS NULL",
            )
            if rows:
                break
            assert deploy.poll() is None, deploy.communicate()[0]
            time.sleep(0.2)
        else:
            pytest.fail("prisma migrate deploy never started the slow migration")
        before = db_state(pg_url)

        status = run(["status"], project=root, url=pg_url)
        assert "failed" not in status.output, status.output
        assert "being applied: 20250102000000_slow" in status.output
        assert "Prisma Migrate run lock (advisory lock 72707369)" in status.output
        assert "held by pid" in status.output
        document = json.loads(run(["status", "--json"], project=root, url=pg_url).stdout)
        states = [m["state"] for m in document["migrations"]]
        assert states == ["applied", "applying"]

        up = run(["up"], project=root, url=pg_url)
        assert up.exit_code == 3, up.output + up.stderr
        assert "20250102000000_slow is being applied" in up.stderr
        assert "held by pid" in up.stderr and "resolve" not in up.stderr
        assert db_state(pg_url) == before
    finally:
        deploy.kill()
        deploy.communicate()
