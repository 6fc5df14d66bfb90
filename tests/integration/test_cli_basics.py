"""CLI basics: start-up cost, init, new, dbmate end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import run, sql, write

HEAVY = ("psycopg", "pglast", "sqlglot", "rich", "pymysql")


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys; from backout.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_python_dash_m_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "backout", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("backout, version ")


@pytest.mark.parametrize("layout", ["prisma", "plain", "dbmate"])
def test_init_then_new_scaffolds_the_pair(tmp_path: Path, layout: str) -> None:
    result = run(["init", "--layout", layout], project=tmp_path)
    assert result.exit_code == 0, result.stderr
    config = tomllib.loads((tmp_path / "backout.toml").read_text())
    assert config["layout"] == layout
    again = run(["init", "--layout", layout], project=tmp_path)
    assert again.exit_code == 2 and "already exists" in again.stderr

    created = run(["new", "Add Vouchers!"], project=tmp_path)
    assert created.exit_code == 0, created.stderr
    doc = json.loads(run(["status", "--json"], project=tmp_path).output)
    (migration,) = doc["migrations"]
    assert migration["name"] == "add_vouchers"
    assert migration["rollback"]["risk"] == "HIGH"  # scaffolded, valid directives
    if layout == "prisma":
        assert migration["rollback"]["file"].startswith("prisma/rollback/")
        assert migration["file"].endswith("/migration.sql")
    elif layout == "plain":
        assert migration["rollback"]["file"].endswith(".down.sql")
    else:
        assert migration["rollback"]["file"] == migration["file"]


def test_init_detects_existing_layout_and_ignores_backups_in_git(tmp_path: Path) -> None:
    write(tmp_path, {"prisma/migrations/20240101000000_a/migration.sql": "SELECT 1;\n"})
    (tmp_path / ".git").mkdir()
    result = run(["init"], project=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert 'layout = "prisma"' in (tmp_path / "backout.toml").read_text()
    assert ".backout/" in (tmp_path / ".gitignore").read_text()


def test_init_without_any_layout_needs_one(tmp_path: Path) -> None:
    result = run(["init"], project=tmp_path)
    assert result.exit_code == 2
    assert "--layout" in result.stderr
    assert not (tmp_path / "backout.toml").exists()


def test_new_for_existing_migration_adds_only_the_rollback(tmp_path: Path) -> None:
    write(tmp_path, {"prisma/migrations/20240101000000_a/migration.sql": "SELECT 1;\n"})
    result = run(["new", "20240101000000_a"], project=tmp_path)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "prisma/rollback/20240101000000_a_rollback.sql").is_file()
    assert run(["new", "20240101000000_a"], project=tmp_path).exit_code == 2


DBMATE = {
    "db/migrations/20240101000000_users.sql": """
        -- migrate:up
        CREATE TABLE users (id INTEGER PRIMARY KEY);

        -- migrate:down
        -- backout:risk HIGH
        DROP TABLE users;
    """,
    "db/migrations/20240102000000_idx.sql": """
        -- migrate:up transaction:false
        CREATE INDEX CONCURRENTLY users_id ON users (id);

        -- migrate:down transaction:false
        -- backout:risk LOW
        DROP INDEX CONCURRENTLY users_id;
    """,
}


@pytest.mark.postgres
def test_dbmate_with_concurrent_index_on_postgres(tmp_path: Path, pg_url: str) -> None:
    project = write(tmp_path, DBMATE)
    result = run(["up"], project=project, url=pg_url)
    assert result.exit_code == 0, result.stderr
    assert sql(pg_url, "SELECT indexname FROM pg_indexes WHERE indexname = 'users_id'") == [
        ("users_id",)
    ]
    doc = json.loads(run(["status", "--json"], project=project, url=pg_url).output)
    assert doc["layout"] == "dbmate"
    assert [m["state"] for m in doc["migrations"]] == ["applied", "applied"]
    assert doc["migrations"][1]["rollback"]["transaction"] is False


@pytest.mark.postgres
def test_concurrent_index_runs_journaled_without_transaction_off(
    tmp_path: Path, pg_url: str
) -> None:
    project = write(
        tmp_path,
        {
            **DBMATE,
            "db/migrations/20240102000000_idx.sql": """
                -- migrate:up
                CREATE INDEX CONCURRENTLY users_id ON users (id);
            """,
        },
    )
    status = " ".join(run(["status"], project=project, url=pg_url).stdout.split())
    assert "db/migrations/20240102000000_idx.sql: runs journaled" in status
    assert "CREATE INDEX CONCURRENTLY cannot run inside a transaction block (line 2)" in status
    result = run(["up"], project=project, url=pg_url)
    assert result.exit_code == 0, result.stderr
    assert "1 migration(s) ran journaled" in result.stdout
    valid = sql(
        pg_url,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = 'users_id'",
    )
    assert valid == [(True,)]
    assert run(["status"], project=project, url=pg_url).exit_code == 0
