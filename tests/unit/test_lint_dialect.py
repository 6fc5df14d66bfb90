"""``backout lint`` with no database URL lints the scripts in the dialect they are written for:
Prisma's migration_lock.toml provider, else its schema.prisma datasource provider (issue #11 §4:
valid PostgreSQL linted as SQLite gave 50 BO501 on a real project)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers import run, write

#: valid PostgreSQL that SQLite's parser refuses
PG_ONLY = """\
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE TABLE "User" (id SERIAL PRIMARY KEY, role "Role" NOT NULL DEFAULT 'USER');
ALTER TABLE "User" ALTER COLUMN role TYPE text USING role::text;
"""
DOWN = '-- backout:risk HIGH\nDROP TABLE "User";\nDROP TYPE "Role";\n'
SCHEMA = """\
// the datasource says which database the migrations are written for
generator client {
  provider = "prisma-client-js"
}

datasource db {
  provider = "postgresql" // not "sqlite"
  url      = env("DATABASE_URL")
}
"""


def project(root: Path, extra: dict[str, str]) -> Path:
    return write(
        root,
        {
            "prisma/migrations/20250101000000_init/migration.sql": PG_ONLY,
            "prisma/rollback/20250101000000_init_rollback.sql": DOWN,
            **extra,
        },
    )


def rules(root: Path) -> list[str]:
    result = run(["lint", "--json", "--no-squawk", "--offline"], project=root)
    doc = json.loads(result.stdout)
    return [f["rule"] for f in doc["findings"]]


@pytest.mark.parametrize(
    "files",
    [
        {"prisma/schema.prisma": SCHEMA},
        {"prisma/schema/main.prisma": SCHEMA},
        {"prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n'},
    ],
    ids=["schema.prisma", "multi-file schema", "migration_lock.toml"],
)
def test_lint_without_url_uses_the_prisma_provider(tmp_path: Path, files: dict[str, str]) -> None:
    assert rules(project(tmp_path, files)) == []


def test_without_any_provider_the_default_dialect_applies(tmp_path: Path) -> None:
    # the control: the same scripts linted as SQLite (the default URL) do not parse
    assert "BO501" in rules(project(tmp_path, {}))


def test_a_url_of_another_dialect_names_the_schema_file(tmp_path: Path) -> None:
    root = project(tmp_path, {"prisma/schema.prisma": SCHEMA})
    result = run(["status"], project=root, url=f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 2
    assert "prisma/schema.prisma says provider 'postgresql'" in result.stderr
