"""backout.demo.sampledata: realistic rows for the example projects, checked on real databases."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backout.demo.sampledata import fill
from backout.model.errors import ConfigError, DatabaseError, UsageError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

VOUCHER_TABLES = ["User", "Voucher", "VoucherRedemption", "TokenTransaction", "UserTokenBalance"]
GIFT_TABLES = [
    "sessions",
    "security_audit",
    "registries",
    "registry_items",
    "registry_purchases",
    "group_gift_contributions",
    "registry_addresses",
    "registry_invitations",
    "metafield_syncs",
]

# Users whose balance is not the sum of their ledger (there must be none).
LEDGER_MISMATCHES = """
SELECT count(*) FROM "UserTokenBalance" AS b
LEFT JOIN (SELECT "userId", sum("amount") AS total FROM "TokenTransaction" GROUP BY "userId") AS t
  ON t."userId" = b."userId"
WHERE b."balance" <> coalesce(t.total, 0)
"""
# Vouchers whose use count differs from their number of redemptions (there must be none).
USE_COUNT_MISMATCHES = """
SELECT count(*) FROM "Voucher" AS v
WHERE v."currentUses" <> (
    SELECT count(*) FROM "VoucherRedemption" AS r WHERE r."voucherId" = v."id"
)
"""
# Balances that would go negative if every voucher token were taken back (there must be none).
NEGATIVE_WITHOUT_VOUCHERS = """
SELECT count(*) FROM "UserTokenBalance" AS b
JOIN (SELECT "userId", sum("amount") AS total FROM "TokenTransaction"
      WHERE "source" = 'voucher_redemption' GROUP BY "userId") AS r ON r."userId" = b."userId"
WHERE b."balance" - r.total < 0
"""
VOUCHER_GRANTS = """
SELECT count(*), min("createdAt"), max("createdAt") FROM "TokenTransaction"
WHERE "source" = 'voucher_redemption'
"""


def migrations(example: str) -> list[Path]:
    """The example's migration.sql files, oldest first."""
    found = sorted((EXAMPLES / example / "prisma" / "migrations").glob("*/migration.sql"))
    assert found, f"no migrations in examples/{example}"
    return found


def migrated_sqlite(path: Path) -> str:
    """Apply the vouchers-sqlite migrations to a new SQLite file; return its URL."""
    conn = sqlite3.connect(path)
    try:
        for migration in migrations("vouchers-sqlite"):
            conn.executescript(migration.read_text(encoding="utf-8"))
    finally:
        conn.close()
    return f"sqlite:///{path}"


def migrate_pg(url: str, example: str) -> None:
    """Apply every migration of a PostgreSQL example, each in its own transaction."""
    import psycopg

    with psycopg.connect(url) as conn:
        for migration in migrations(example):
            # Without parameters psycopg sends the whole file as one simple query.
            conn.execute(migration.read_text(encoding="utf-8"))
            conn.commit()


def sqlite_scalar(path: Path, query: str) -> Any:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchone()[0]
    finally:
        conn.close()


def sqlite_counts(path: Path, tables: list[str]) -> dict[str, int]:
    return {t: int(sqlite_scalar(path, f'SELECT count(*) FROM "{t}"')) for t in tables}


def sqlite_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
    finally:
        conn.close()


def pg_scalar(url: str, query: str) -> Any:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return row[0]


def pg_counts(url: str, tables: list[str]) -> dict[str, int]:
    return {t: int(pg_scalar(url, f'SELECT count(*) FROM "{t}"')) for t in tables}


def pg_schema_objects(url: str) -> list[tuple[str, str]]:
    """Every constraint and index of the public schema with its definition."""
    query = """
        SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
        UNION ALL
        SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
        WHERE indrelid::regclass::text NOT LIKE 'pg_%'
        ORDER BY 1, 2
    """
    import psycopg

    with psycopg.connect(url) as conn:
        return [(str(a), str(b)) for a, b in conn.execute(query).fetchall()]


# --------------------------------------------------------------------------- SQLite


def test_vouchers_sqlite_rows_and_invariants(tmp_path: Path) -> None:
    db = tmp_path / "dev.db"
    counts = fill("vouchers-sqlite", migrated_sqlite(db), scale=400, seed=7)

    assert list(counts) == VOUCHER_TABLES
    assert counts == sqlite_counts(db, VOUCHER_TABLES)
    assert counts["User"] == 400
    assert counts["UserTokenBalance"] == 400
    assert counts["Voucher"] == 20
    assert counts["TokenTransaction"] > 3 * 400
    assert counts["VoucherRedemption"] > 200

    assert sqlite_scalar(db, LEDGER_MISMATCHES) == 0
    assert sqlite_scalar(db, 'SELECT min("balance") FROM "UserTokenBalance"') >= 0
    assert sqlite_scalar(db, NEGATIVE_WITHOUT_VOUCHERS) == 0
    assert sqlite_scalar(db, USE_COUNT_MISMATCHES) == 0
    assert sqlite_scalar(db, "SELECT count(*) FROM pragma_foreign_key_check") == 0

    # Voucher grants spread over 2024, as ISO-8601 text, so a cut-off selects a strict subset.
    grants, first, last = sqlite_rows_one(db, VOUCHER_GRANTS)
    assert grants > 100
    assert "2024-03-15 00:00:00.000" <= first < "2024-06-01"
    assert "2024-10-01" < last <= "2024-12-31 23:59:59.999"
    after = sqlite_scalar(
        db,
        """SELECT count(*) FROM "TokenTransaction" WHERE "source" = 'voucher_redemption'
           AND "createdAt" > strftime('%Y-%m-%d %H:%M:%f', '2024-09-01T00:00:00+00:00')""",
    )
    assert 0 < after < grants


def sqlite_rows_one(path: Path, query: str) -> tuple[Any, ...]:
    conn = sqlite3.connect(path)
    try:
        row: tuple[Any, ...] = conn.execute(query).fetchone()
        return row
    finally:
        conn.close()


def test_vouchers_on_a_sqlite_url_is_vouchers_sqlite(tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    fill("vouchers-sqlite", migrated_sqlite(a), scale=50, seed=3)
    fill("vouchers", migrated_sqlite(b), scale=50, seed=3)
    for table in VOUCHER_TABLES:
        assert sqlite_rows(a, table) == sqlite_rows(b, table)


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    fill("vouchers-sqlite", migrated_sqlite(a), scale=60, seed=11)
    fill("vouchers-sqlite", migrated_sqlite(b), scale=60, seed=11)
    fill("vouchers-sqlite", migrated_sqlite(c), scale=60, seed=12)
    for table in VOUCHER_TABLES:
        assert sqlite_rows(a, table) == sqlite_rows(b, table)
    assert sqlite_rows(a, "TokenTransaction") != sqlite_rows(c, "TokenTransaction")


def test_refuses_tables_that_already_have_rows(tmp_path: Path) -> None:
    db = tmp_path / "dev.db"
    url = migrated_sqlite(db)
    first = fill("vouchers-sqlite", url, scale=30)
    with pytest.raises(UsageError, match="already has rows"):
        fill("vouchers-sqlite", url, scale=30)
    assert sqlite_counts(db, VOUCHER_TABLES) == first


def test_unmigrated_sqlite_database_is_a_database_error(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    sqlite3.connect(db).close()
    with pytest.raises(DatabaseError) as caught:
        fill("vouchers-sqlite", f"sqlite:///{db}", scale=10)
    assert caught.value.hint is not None and "migrations" in caught.value.hint


def test_missing_sqlite_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        fill("vouchers-sqlite", f"sqlite:///{tmp_path / 'nope.db'}")
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.parametrize(
    ("example", "url", "error"),
    [
        ("nonesuch", "sqlite:///x.db", UsageError),
        ("giftregistry", "sqlite:///x.db", ConfigError),
        ("vouchers-sqlite", "postgresql://postgres@127.0.0.1/x", ConfigError),
    ],
)
def test_bad_requests_fail_before_touching_a_database(
    example: str, url: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        fill(example, url)


def test_scale_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="scale"):
        fill("vouchers-sqlite", migrated_sqlite(tmp_path / "dev.db"), scale=0)


def test_command_line_prints_counts(tmp_path: Path) -> None:
    db = tmp_path / "dev.db"
    url = migrated_sqlite(db)
    done = subprocess.run(
        [sys.executable, "-m", "backout.demo.sampledata", "vouchers-sqlite", url, "--scale", "25"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "UserTokenBalance" in done.stdout and "total" in done.stdout
    assert sqlite_counts(db, ["User"]) == {"User": 25}

    again = subprocess.run(
        [sys.executable, "-m", "backout.demo.sampledata", "vouchers-sqlite", url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 2
    assert "already has rows" in again.stderr


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_vouchers_postgres_rows_invariants_and_schema(pg_url: str, tmp_path: Path) -> None:
    import psycopg

    migrate_pg(pg_url, "vouchers")
    schema_before = pg_schema_objects(pg_url)
    counts = fill("vouchers", pg_url, scale=400, seed=7)

    assert list(counts) == VOUCHER_TABLES
    assert counts == pg_counts(pg_url, VOUCHER_TABLES)
    assert pg_scalar(pg_url, LEDGER_MISMATCHES) == 0
    assert pg_scalar(pg_url, 'SELECT min("balance") FROM "UserTokenBalance"') >= 0
    assert pg_scalar(pg_url, NEGATIVE_WITHOUT_VOUCHERS) == 0
    assert pg_scalar(pg_url, USE_COUNT_MISMATCHES) == 0
    # Foreign keys and indexes are dropped for the COPY and must come back exactly.
    assert pg_schema_objects(pg_url) == schema_before

    # The id sequence was moved past the copied ids: the application can insert again.
    with psycopg.connect(pg_url) as conn:
        user_id = conn.execute('SELECT "id" FROM "User" LIMIT 1').fetchone()
        assert user_id is not None
        new_id = conn.execute(
            'INSERT INTO "TokenTransaction" ("userId", "amount", "source") '
            "VALUES (%s, 1, 'bonus') RETURNING \"id\"",
            (user_id[0],),
        ).fetchone()
        assert new_id is not None and new_id[0] == counts["TokenTransaction"] + 1

    # The same seed gives the same ledger on SQLite as on PostgreSQL.
    db = tmp_path / "dev.db"
    fill("vouchers", migrated_sqlite(db), scale=400, seed=7)
    query = 'SELECT "userId", "balance" FROM "UserTokenBalance" ORDER BY 1'
    with psycopg.connect(pg_url) as conn:
        pg_balances = [tuple(r) for r in conn.execute(query).fetchall()]
    conn_sqlite = sqlite3.connect(db)
    try:
        sqlite_balances = conn_sqlite.execute(query).fetchall()
    finally:
        conn_sqlite.close()
    assert pg_balances == sqlite_balances


@pytest.mark.postgres
def test_vouchers_postgres_accepts_prisma_schema_parameter(pg_url: str) -> None:
    migrate_pg(pg_url, "vouchers")
    counts = fill("vouchers", pg_url + "?schema=public", scale=20)
    assert counts == pg_counts(pg_url, VOUCHER_TABLES)


@pytest.mark.postgres
def test_unmigrated_postgres_database_is_a_database_error(pg_url: str) -> None:
    with pytest.raises(DatabaseError) as caught:
        fill("vouchers", pg_url, scale=10)
    assert caught.value.hint is not None and "migrations" in caught.value.hint


@pytest.mark.postgres
def test_giftregistry_rows_fit_the_rollback_scripts(pg_url: str) -> None:
    import psycopg

    migrate_pg(pg_url, "giftregistry")
    schema_before = pg_schema_objects(pg_url)
    counts = fill("giftregistry", pg_url, scale=300, seed=5)

    assert list(counts) == GIFT_TABLES
    assert counts == pg_counts(pg_url, GIFT_TABLES)
    assert counts["registries"] == 300
    assert counts["registry_items"] > 5 * 300
    assert counts["registry_purchases"] > 300
    assert all(counts[t] > 0 for t in GIFT_TABLES)
    assert pg_schema_objects(pg_url) == schema_before

    # Each purchase bought a variant of its own item: the backfill and its rollback find it.
    assert (
        pg_scalar(
            pg_url,
            """SELECT count(*) FROM registry_purchases p JOIN registry_items i
               ON i.id = p."registryItemId" WHERE i."variantId" <> p."variantId" """,
        )
        == 0
    )
    # The drift rollback's require: no paid contribution without its purchase.
    assert (
        pg_scalar(
            pg_url,
            """SELECT count(*) FROM group_gift_contributions
               WHERE status = 'PAID' AND "purchaseId" IS NULL""",
        )
        == 0
    )
    assert pg_scalar(pg_url, 'SELECT count(*) FROM sessions WHERE "accessToken" IS NULL') > 0
    assert pg_scalar(pg_url, 'SELECT count(*) FROM sessions WHERE "accessToken" IS NOT NULL') > 0

    # Rolling both migrations back by hand keeps every purchase, linked to its registry.
    rollback = EXAMPLES / "giftregistry" / "prisma" / "rollback"
    with psycopg.connect(pg_url) as conn:
        for name in (
            "20250720000002_fix_critical_schema_drift_rollback.sql",
            "20250720000000_encrypt_access_tokens_rollback.sql",
        ):
            conn.execute((rollback / name).read_text(encoding="utf-8"))
        conn.commit()
    assert (
        pg_scalar(pg_url, "SELECT count(*) FROM registry_purchases") == counts["registry_purchases"]
    )
    orphans = """SELECT count(*) FROM registry_purchases p
                 LEFT JOIN registries r ON r.id = p."registryId" WHERE r.id IS NULL"""
    assert pg_scalar(pg_url, orphans) == 0
