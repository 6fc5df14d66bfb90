"""PostgreSQL catalog snapshots against the real server: content, diffs, exclusions, stats."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from backout.dialects.base import Actor
from backout.dialects.postgres.catalog import read_postgres_snapshot, read_table_stats
from backout.dialects.postgres.dialect import PostgresDialect
from backout.model.errors import DatabaseError
from backout.model.schema import QueryFn, SchemaSnapshot, diff_schemas
from backout.model.urls import parse_url

pytestmark = pytest.mark.postgres

# The seeds' voucher system, plus one of every kind of object the snapshot knows.
RICH_SCHEMA = '''
CREATE TYPE "VoucherType" AS ENUM ('PERCENT', 'FIXED', 'GIFT');
CREATE TYPE "VoucherStatus" AS ENUM ('ACTIVE', 'EXPIRED');
CREATE DOMAIN positive_int AS integer NOT NULL CHECK (VALUE > 0);
CREATE TYPE money_pair AS (amount numeric(12, 2), currency text);
CREATE TABLE "Voucher" (
  id serial PRIMARY KEY,
  code text NOT NULL COLLATE "C",
  type "VoucherType" NOT NULL DEFAULT 'PERCENT',
  status "VoucherStatus" NOT NULL DEFAULT 'ACTIVE',
  value integer NOT NULL CHECK (value > 0),
  "currentUses" integer NOT NULL DEFAULT 0,
  "doubledUses" integer GENERATED ALWAYS AS ("currentUses" * 2) STORED,
  "createdAt" timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT voucher_code_uq UNIQUE (code) DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE "VoucherRedemption" (
  id bigint GENERATED ALWAYS AS IDENTITY (START WITH 100) PRIMARY KEY,
  "voucherId" integer NOT NULL REFERENCES "Voucher"(id) ON DELETE CASCADE ON UPDATE RESTRICT,
  "userId" text NOT NULL
);
CREATE UNIQUE INDEX "VoucherRedemption_voucherId_userId_key"
  ON "VoucherRedemption" ("voucherId", "userId");
CREATE INDEX voucher_active_lower_code ON "Voucher" (lower(code)) WHERE status = 'ACTIVE';
CREATE TABLE "we""ird table" ("col umn" integer, "voucher id" integer, note text);
ALTER TABLE "we""ird table" ADD CONSTRAINT "fk ""nv"""
  FOREIGN KEY ("voucher id") REFERENCES "Voucher"(id) NOT VALID;
CREATE SEQUENCE ticket_seq AS integer START 10 INCREMENT 5 MAXVALUE 1000 CYCLE;
CREATE VIEW active_vouchers AS SELECT id, code FROM "Voucher" WHERE status = 'ACTIVE';
CREATE MATERIALIZED VIEW voucher_counts AS SELECT type, count(*) AS n FROM "Voucher" GROUP BY type;
CREATE FUNCTION touch_voucher() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW."currentUses" := NEW."currentUses";
  RETURN NEW;
END
$$;
CREATE TRIGGER voucher_touch BEFORE UPDATE ON "Voucher"
  FOR EACH ROW EXECUTE FUNCTION touch_voucher();
COMMENT ON TABLE "Voucher" IS 'Voucher codes';
COMMENT ON COLUMN "Voucher".value IS 'cents or percent';
COMMENT ON CONSTRAINT voucher_code_uq ON "Voucher" IS 'one code per voucher';
COMMENT ON FUNCTION touch_voucher() IS 'keeps currentUses';
COMMENT ON TYPE "VoucherType" IS 'kinds of voucher';
CREATE EXTENSION pgcrypto;
'''

# backout's and Prisma's bookkeeping: never part of a snapshot.
BOOKKEEPING = """
CREATE TABLE _prisma_migrations (
  id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, migration_name varchar(255)
);
CREATE INDEX prisma_name ON _prisma_migrations (migration_name);
CREATE SCHEMA backout;
CREATE TABLE backout.migrations (id serial PRIMARY KEY, name text);
CREATE SCHEMA app;
CREATE TABLE app._prisma_migrations (id text);
"""


def connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def query_fn(conn: psycopg.Connection[Any]) -> QueryFn:
    """A QueryFn like ``Session.query``: ``%s`` placeholders, no %-processing without params."""

    def query(sql: str, params: Any) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(sql.encode() if params is None else sql, params)
            return list(cur.fetchall()) if cur.description is not None else []

    return query


@pytest.fixture
def db(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(pg_url) as conn:
        conn.execute(RICH_SCHEMA.encode())
        yield conn


@pytest.fixture
def other_pg_url(pg_admin_url: str) -> Iterator[str]:
    """A second empty database, for "same schema elsewhere" comparisons."""
    name = f"backout_t_{uuid.uuid4().hex[:12]}"
    with connect(pg_admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    base, _, _ = pg_admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with connect(pg_admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def snap(conn: psycopg.Connection[Any], **kwargs: Any) -> SchemaSnapshot:
    return read_postgres_snapshot(query_fn(conn), **kwargs)


# --------------------------------------------------------------------------------------------
# What a snapshot contains


def test_snapshot_reads_every_kind_of_object(db: psycopg.Connection[Any]) -> None:
    s = snap(db)
    assert s.dialect == "postgresql"
    assert s.schemas == ("public",)

    voucher = s.tables["public.Voucher"]
    assert [c.name for c in voucher.columns] == [
        "id",
        "code",
        "type",
        "status",
        "value",
        "currentUses",
        "doubledUses",
        "createdAt",
    ]
    id_, code, type_, _, value, _, doubled, created = voucher.columns
    assert (id_.type, id_.nullable, id_.default) == (
        "integer",
        False,
        "nextval('\"Voucher_id_seq\"'::regclass)",
    )
    assert code.collation == '"C"'
    assert (type_.type, type_.default) == ('"VoucherType"', "'PERCENT'::\"VoucherType\"")
    assert (value.type, value.nullable) == ("integer", False)
    assert (doubled.generated, doubled.generated_storage, doubled.default) == (
        '("currentUses" * 2)',
        "STORED",
        None,
    )
    assert created.type == "timestamp with time zone"
    constraints = {c.key: c for c in voucher.constraints}
    assert constraints["Voucher_pkey"].definition == "PRIMARY KEY (id)"
    assert voucher.primary_key is constraints["Voucher_pkey"]
    assert constraints["Voucher_value_check"].definition == "CHECK (value > 0)"
    uq = constraints["voucher_code_uq"]
    assert (uq.kind, uq.columns, uq.deferrable, uq.initially_deferred) == (
        "unique",
        ("code",),
        True,
        True,
    )

    redemption = s.tables["public.VoucherRedemption"]
    assert redemption.columns[0].identity == "ALWAYS"
    (fk,) = redemption.foreign_keys
    assert (fk.name, fk.columns, fk.referenced_table, fk.referenced_columns) == (
        "VoucherRedemption_voucherId_fkey",
        ("voucherId",),
        "public.Voucher",
        ("id",),
    )
    assert (fk.on_delete, fk.on_update, fk.match, fk.validated) == (
        "CASCADE",
        "RESTRICT",
        "SIMPLE",
        True,
    )

    weird = s.tables['public.we"ird table']
    assert [c.name for c in weird.columns] == ["col umn", "voucher id", "note"]
    (not_valid,) = weird.foreign_keys
    assert not_valid.name == 'fk "nv"'
    assert not not_valid.validated
    assert not_valid.definition.endswith("NOT VALID")

    # Indexes backing PRIMARY KEY / UNIQUE constraints are the constraints, not indexes.
    assert set(s.indexes) == {
        "public.VoucherRedemption_voucherId_userId_key",
        "public.voucher_active_lower_code",
    }
    partial = s.indexes["public.voucher_active_lower_code"]
    assert (partial.table, partial.columns, partial.unique, partial.method) == (
        "Voucher",
        ("lower(code)",),
        False,
        "btree",
    )
    assert partial.predicate == "status = 'ACTIVE'::\"VoucherStatus\""
    assert partial.definition.startswith("CREATE INDEX voucher_active_lower_code ON public.")
    assert s.indexes["public.VoucherRedemption_voucherId_userId_key"].unique

    assert s.enums["public.VoucherType"].values == ("PERCENT", "FIXED", "GIFT")
    assert s.types["public.positive_int"].kind == "domain"
    assert s.types["public.positive_int"].definition == (
        "integer NOT NULL CONSTRAINT positive_int_check CHECK (VALUE > 0)"
    )
    assert s.types["public.money_pair"].definition == "(amount numeric(12,2), currency text)"

    ticket = s.sequences["public.ticket_seq"]
    assert (ticket.data_type, ticket.start, ticket.increment, ticket.maximum, ticket.cycle) == (
        "integer",
        10,
        5,
        1000,
        True,
    )
    assert ticket.owned_by_table is None
    serial = s.sequences["public.Voucher_id_seq"]
    assert (serial.owned_by_table, serial.owned_by_column) == ("public.Voucher", "id")
    identity = s.sequences["public.VoucherRedemption_id_seq"]
    assert (identity.start, identity.owned_by_column) == (100, "id")

    view = s.views["public.active_vouchers"]
    assert not view.materialized
    assert "WHERE \"Voucher\".status = 'ACTIVE'" in view.definition
    assert s.views["public.voucher_counts"].materialized

    touch = s.functions["public.touch_voucher()"]
    assert (touch.kind, touch.result, touch.language) == ("function", "trigger", "plpgsql")
    assert 'NEW."currentUses" := NEW."currentUses";' in touch.definition
    assert len(touch.definition_sha256) == 64

    trigger = s.triggers["public.Voucher.voucher_touch"]
    assert trigger.definition == (
        'CREATE TRIGGER voucher_touch BEFORE UPDATE ON "Voucher" '
        "FOR EACH ROW EXECUTE FUNCTION touch_voucher()"
    )
    assert trigger.enabled == "ENABLED"

    comments = {key: c.text for key, c in s.comments.items()}
    assert comments["table public.Voucher"] == "Voucher codes"
    assert comments["column public.Voucher.value"] == "cents or percent"
    assert comments["constraint public.Voucher.voucher_code_uq"] == "one code per voucher"
    assert comments["function public.touch_voucher()"] == "keeps currentUses"
    assert comments["type public.VoucherType"] == "kinds of voucher"

    # An extension is one object; its functions are not listed one by one.
    assert s.extensions["pgcrypto"].schema == "public"
    assert not any(f.name == "gen_random_bytes" for f in s.functions.values())


def test_snapshot_has_no_side_effects(db: psycopg.Connection[Any]) -> None:
    before = db.execute("SELECT last_value, is_called FROM ticket_seq").fetchone()
    serial = db.execute('SELECT last_value, is_called FROM "Voucher_id_seq"').fetchone()
    db.execute("BEGIN")
    snap(db)
    # Still in the caller's transaction, and it can still be rolled back cleanly.
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    db.execute("ROLLBACK")
    assert db.execute("SELECT last_value, is_called FROM ticket_seq").fetchone() == before
    assert db.execute('SELECT last_value, is_called FROM "Voucher_id_seq"').fetchone() == serial


def test_snapshot_read_in_one_batch_is_the_same_in_two_round_trips(
    db: psycopg.Connection[Any], pg_url: str
) -> None:
    """The dialect reads a snapshot through ``Session.query_many`` (pipeline mode): the same
    queries, so the very same snapshot as one query at a time, in 2 round trips instead of 22;
    inside the caller's transaction too (it sees the transaction's own changes)."""
    dialect = PostgresDialect()
    session = dialect.connect(parse_url(pg_url), actor=Actor.current())
    singles: list[str] = []
    batches: list[int] = []

    def query(sql: str, params: Any) -> list[tuple[Any, ...]]:
        singles.append(sql)
        return session.query(sql, params)

    def batch(queries: Any) -> list[list[tuple[Any, ...]]]:
        batches.append(len(queries))
        return session.query_many(queries)

    try:
        db.execute(BOOKKEEPING.encode())
        one_by_one = snap(db)
        assert read_postgres_snapshot(query, batch=batch) == one_by_one
        assert len(singles) == 1 and len(batches) == 1 and batches[0] > 20
        assert dialect.snapshot(session) == one_by_one
        assert dialect.snapshot(session).fingerprint() == one_by_one.fingerprint()
        session.begin()
        session.execute('ALTER TABLE "Voucher" ADD COLUMN extra integer')
        inside = dialect.snapshot(session)
        assert session.in_transaction
        assert [c.name for c in inside.tables["public.Voucher"].columns][-1] == "extra"
        session.rollback()
        assert dialect.snapshot(session) == one_by_one
    finally:
        session.close()


def test_query_many_reports_a_failing_query_as_a_database_error(pg_url: str) -> None:
    dialect = PostgresDialect()
    session = dialect.connect(parse_url(pg_url), actor=Actor.current())
    try:
        with pytest.raises(DatabaseError) as caught:
            session.query_many([("SELECT 1", None), ("SELECT * FROM no_such_table_here", None)])
        assert caught.value.sqlstate == "42P01"
        assert session.query_many([("SELECT %s::int", (1,)), ("SELECT 2", None)]) == [
            [(1,)],
            [(2,)],
        ]
    finally:
        session.close()


def test_round_trip_of_a_real_snapshot(db: psycopg.Connection[Any]) -> None:
    s = snap(db)
    again = SchemaSnapshot.from_dict(s.to_dict())
    assert again == s
    assert again.fingerprint() == s.fingerprint()


# --------------------------------------------------------------------------------------------
# Exclusions


def test_bookkeeping_is_never_part_of_a_snapshot(db: psycopg.Connection[Any]) -> None:
    before = snap(db)
    db.execute(BOOKKEEPING.encode())
    after = snap(db)
    # Only the new empty schema "app" shows; its _prisma_migrations does not.
    assert diff_schemas(before, after).lines() == ['schema "app" added']
    assert "backout" not in after.schemas
    assert not any("_prisma_migrations" in key for key in after.tables)
    assert not any("prisma_name" in key for key in after.indexes)
    assert not any(key.startswith("backout.") for key in after.sequences)
    # Changes inside them do not move the fingerprint either.
    db.execute("ALTER TABLE _prisma_migrations ADD COLUMN logs text")
    db.execute("CREATE TABLE backout.events (id int)")
    db.execute("INSERT INTO _prisma_migrations (id, checksum) VALUES ('x', 'y')")
    assert snap(db).fingerprint() == after.fingerprint()
    # Even when asked for explicitly, schema backout stays out.
    assert snap(db, schemas=["backout"]).schemas == ()


def test_schemas_and_exclude_narrow_the_snapshot(db: psycopg.Connection[Any]) -> None:
    db.execute("CREATE SCHEMA app; CREATE TABLE app.t (id int); CREATE VIEW app.v AS SELECT 1")
    everything = snap(db)
    assert "app.t" in everything.tables
    only_app = snap(db, schemas=["app", "missing"])
    assert only_app.schemas == ("app",)
    assert set(only_app.tables) == {"app.t"}
    assert set(only_app.views) == {"app.v"}

    def exclude(schema: str, name: str) -> bool:
        return schema == "public" and name in ("Voucher", "ticket_seq", "touch_voucher")

    narrowed = snap(db, exclude=exclude)
    assert "public.Voucher" not in narrowed.tables
    assert "public.ticket_seq" not in narrowed.sequences
    assert "public.touch_voucher()" not in narrowed.functions
    # What hangs off an excluded table goes with it.
    assert "public.voucher_active_lower_code" not in narrowed.indexes
    assert "public.Voucher.voucher_touch" not in narrowed.triggers
    assert "public.Voucher_id_seq" not in narrowed.sequences
    assert "column public.Voucher.value" not in narrowed.comments
    assert "public.VoucherRedemption" in narrowed.tables


# --------------------------------------------------------------------------------------------
# Every change moves the fingerprint and gives a precise line

CHANGES: list[tuple[str, str, list[str]]] = [
    (
        "column type",
        'ALTER TABLE "Voucher" ALTER COLUMN value TYPE bigint',
        ['column "Voucher"."value" changed type: integer → bigint'],
    ),
    (
        "column nullability",
        'ALTER TABLE "VoucherRedemption" ALTER COLUMN "userId" DROP NOT NULL',
        ['column "VoucherRedemption"."userId" changed nullability: NOT NULL → NULL'],
    ),
    (
        "column default",
        'ALTER TABLE "Voucher" ALTER COLUMN "currentUses" SET DEFAULT 1',
        ['column "Voucher"."currentUses" changed default: 0 → 1'],
    ),
    (
        "column added",
        'ALTER TABLE "Voucher" ADD COLUMN "maxUses" integer NOT NULL DEFAULT 1',
        ['column "Voucher"."maxUses" added (integer NOT NULL DEFAULT 1)'],
    ),
    (
        "column dropped from a hostile table",
        'ALTER TABLE "we""ird table" DROP COLUMN "col umn"',
        ['column "we""ird table"."col umn" removed (integer)'],
    ),
    (
        "table dropped",
        'DROP TABLE "we""ird table"',
        ['table "we""ird table" removed'],
    ),
    (
        "table added in another schema",
        'CREATE SCHEMA audit; CREATE TABLE audit."Voucher" (id int)',
        ['schema "audit" added', 'table "audit"."Voucher" added'],
    ),
    (
        "enum value renamed",
        "ALTER TYPE \"VoucherType\" RENAME VALUE 'GIFT' TO 'PRESENT'",
        [
            "enum \"VoucherType\" lost value 'GIFT'",
            "enum \"VoucherType\" gained value 'PRESENT'",
        ],
    ),
    (
        "enum value added before another",
        "ALTER TYPE \"VoucherType\" ADD VALUE 'BONUS' BEFORE 'FIXED'",
        ["enum \"VoucherType\" gained value 'BONUS'"],
    ),
    (
        "enum added",
        "CREATE TYPE mood AS ENUM ('happy', 'sad')",
        ["enum \"mood\" added: ('happy', 'sad')"],
    ),
    (
        "check constraint dropped",
        'ALTER TABLE "Voucher" DROP CONSTRAINT "Voucher_value_check"',
        ['constraint "Voucher"."Voucher_value_check" removed: CHECK (value > 0)'],
    ),
    (
        "unique constraint made immediate",
        'ALTER TABLE "Voucher" DROP CONSTRAINT voucher_code_uq, '
        "ADD CONSTRAINT voucher_code_uq UNIQUE (code)",
        [
            'constraint "Voucher"."voucher_code_uq" changed deferrability: '
            "DEFERRABLE → NOT DEFERRABLE",
            'constraint "Voucher"."voucher_code_uq" changed initial mode: '
            "INITIALLY DEFERRED → INITIALLY IMMEDIATE",
            # dropping the constraint dropped its comment
            'comment on constraint "Voucher"."voucher_code_uq" removed: \'one code per voucher\'',
        ],
    ),
    (
        "foreign key action",
        'ALTER TABLE "VoucherRedemption" DROP CONSTRAINT "VoucherRedemption_voucherId_fkey", '
        'ADD CONSTRAINT "VoucherRedemption_voucherId_fkey" FOREIGN KEY ("voucherId") '
        'REFERENCES "Voucher"(id) ON DELETE SET NULL ON UPDATE RESTRICT',
        [
            'foreign key "VoucherRedemption"."VoucherRedemption_voucherId_fkey" '
            "changed ON DELETE: CASCADE → SET NULL"
        ],
    ),
    (
        "foreign key validated",
        'ALTER TABLE "we""ird table" VALIDATE CONSTRAINT "fk ""nv"""',
        ['foreign key "we""ird table"."fk ""nv""" changed validation: NOT VALID → VALID'],
    ),
    (
        "partial index predicate",
        "DROP INDEX voucher_active_lower_code; "
        'CREATE INDEX voucher_active_lower_code ON "Voucher" (lower(code)) '
        "WHERE status = 'EXPIRED'",
        [
            'index "voucher_active_lower_code" changed predicate: '
            "status = 'ACTIVE'::\"VoucherStatus\" → status = 'EXPIRED'::\"VoucherStatus\""
        ],
    ),
    (
        "unique index replaced by a unique constraint",
        'DROP INDEX "VoucherRedemption_voucherId_userId_key"; '
        'ALTER TABLE "VoucherRedemption" ADD CONSTRAINT "VoucherRedemption_voucherId_userId_key" '
        'UNIQUE ("voucherId", "userId")',
        [
            'constraint "VoucherRedemption"."VoucherRedemption_voucherId_userId_key" added: '
            'UNIQUE ("voucherId", "userId")',
            'index "VoucherRedemption_voucherId_userId_key" removed on "VoucherRedemption": '
            'CREATE UNIQUE INDEX "VoucherRedemption_voucherId_userId_key" ON '
            'public."VoucherRedemption" USING btree ("voucherId", "userId")',
        ],
    ),
    (
        "sequence increment",
        "ALTER SEQUENCE ticket_seq INCREMENT BY 2",
        ['sequence "ticket_seq" changed increment: 5 → 2'],
    ),
    (
        "view definition",
        "CREATE OR REPLACE VIEW active_vouchers AS "
        "SELECT id, code FROM \"Voucher\" WHERE status = 'EXPIRED'",
        ['view "active_vouchers" changed definition'],
    ),
    (
        "materialized view dropped",
        "DROP MATERIALIZED VIEW voucher_counts",
        ['materialized view "voucher_counts" removed'],
    ),
    (
        "trigger dropped",
        'DROP TRIGGER voucher_touch ON "Voucher"',
        ['trigger "voucher_touch" on "Voucher" removed'],
    ),
    (
        "trigger disabled",
        'ALTER TABLE "Voucher" DISABLE TRIGGER voucher_touch',
        ['trigger "voucher_touch" on "Voucher" changed firing: ENABLED → DISABLED'],
    ),
    (
        "comment changed",
        "COMMENT ON COLUMN \"Voucher\".value IS 'cents'",
        ["comment on column \"Voucher\".\"value\" changed: 'cents or percent' → 'cents'"],
    ),
    (
        "comment removed",
        'COMMENT ON TABLE "Voucher" IS NULL',
        ["comment on table \"Voucher\" removed: 'Voucher codes'"],
    ),
    (
        "domain constraint",
        "ALTER DOMAIN positive_int DROP NOT NULL",
        [
            'domain type "positive_int" changed definition: integer NOT NULL CONSTRAINT '
            "positive_int_check CHECK (VALUE > 0) → integer CONSTRAINT positive_int_check "
            "CHECK (VALUE > 0)"
        ],
    ),
    (
        "extension dropped",
        "DROP EXTENSION pgcrypto",
        ['extension "pgcrypto" removed (version 1.3)'],
    ),
]


@pytest.mark.parametrize(
    ("sql", "expected"), [(sql, e) for _, sql, e in CHANGES], ids=[n for n, _, _ in CHANGES]
)
def test_change_is_detected_precisely(
    db: psycopg.Connection[Any], sql: str, expected: list[str]
) -> None:
    before = snap(db)
    db.execute(sql.encode())
    after = snap(db)
    assert after.fingerprint() != before.fingerprint()
    diff = diff_schemas(before, after)
    assert diff.lines() == expected
    assert diff.column_order == ()


def test_function_body_change(db: psycopg.Connection[Any]) -> None:
    before = snap(db)
    db.execute(
        b"CREATE OR REPLACE FUNCTION touch_voucher() RETURNS trigger LANGUAGE plpgsql AS "
        b"$$ BEGIN RETURN NEW; END $$"
    )
    after = snap(db)
    old = before.functions["public.touch_voucher()"].definition_sha256[:12]
    new = after.functions["public.touch_voucher()"].definition_sha256[:12]
    assert old != new
    (change,) = diff_schemas(before, after).changes
    assert change.detail == f'function "touch_voucher"() changed definition (sha256 {old} → {new})'
    assert change.after is not None and "RETURN NEW; END" in change.after


def test_drop_and_readd_column_is_a_column_order_change(db: psycopg.Connection[Any]) -> None:
    before = snap(db)
    db.execute(b'ALTER TABLE "we""ird table" DROP COLUMN "col umn"')
    db.execute(b'ALTER TABLE "we""ird table" ADD COLUMN "col umn" integer')
    after = snap(db)
    assert after.fingerprint() != before.fingerprint()
    assert after.fingerprint(ignore_column_order=True) == before.fingerprint(
        ignore_column_order=True
    )
    diff = diff_schemas(before, after)
    assert diff.changes == ()
    assert diff.lines() == [
        'table "we""ird table" changed column order: '
        "(col umn, voucher id, note) → (voucher id, note, col umn)"
    ]
    assert diff.is_empty(ignore_column_order=True)


def test_add_then_drop_column_gives_back_the_same_fingerprint(
    db: psycopg.Connection[Any],
) -> None:
    before = snap(db)
    db.execute(b'ALTER TABLE "Voucher" ADD COLUMN scratch integer')
    assert snap(db).fingerprint() != before.fingerprint()
    db.execute(b'ALTER TABLE "Voucher" DROP COLUMN scratch')
    after = snap(db)  # attnum now has a gap: positions are renumbered
    assert after.fingerprint() == before.fingerprint()
    assert diff_schemas(before, after).is_empty()


def test_same_schema_in_another_database_has_the_same_fingerprint(
    db: psycopg.Connection[Any], other_pg_url: str
) -> None:
    with connect(other_pg_url) as other:
        # Different creation history (oids, attnums, catalog row order), same end state.
        other.execute(b"CREATE TABLE filler (a int, b int); DROP TABLE filler")
        other.execute(RICH_SCHEMA.encode())
        other.execute(b'ALTER TABLE "Voucher" ADD COLUMN gone text')
        other.execute(b'ALTER TABLE "Voucher" DROP COLUMN gone')
        assert snap(other).fingerprint() == snap(db).fingerprint()
        other.execute(b"COMMENT ON TABLE \"Voucher\" IS 'different'")
        assert snap(other).fingerprint() != snap(db).fingerprint()


# --------------------------------------------------------------------------------------------
# Table statistics


def test_table_stats_change_with_content_only(db: psycopg.Connection[Any]) -> None:
    db.execute(
        b"INSERT INTO \"Voucher\" (code, value) VALUES ('A', 1), ('B', 2), ('C', 3);"
        b'INSERT INTO "VoucherRedemption" ("voucherId", "userId") VALUES (1, \'u1\');'
        b'INSERT INTO "we""ird table" VALUES (1, 1, \'x\')'
    )
    s = snap(db)
    q = query_fn(db)
    stats = read_table_stats(q, s)
    assert set(stats) == set(s.tables)
    assert stats["public.Voucher"].row_count == 3
    assert stats['public.we"ird table'].row_count == 1
    assert stats["public.VoucherRedemption"].row_count == 1

    # Rewriting rows with the same values moves them physically, not in content.
    db.execute(b'UPDATE "Voucher" SET value = value')
    db.execute(b'VACUUM FULL "Voucher"')
    assert read_table_stats(q, s) == stats

    db.execute(b"UPDATE \"Voucher\" SET value = 5 WHERE code = 'B'")
    changed = read_table_stats(q, s)
    assert changed["public.Voucher"].row_count == 3
    assert changed["public.Voucher"].checksum != stats["public.Voucher"].checksum
    assert changed["public.VoucherRedemption"] == stats["public.VoucherRedemption"]
    assert changed['public.we"ird table'] == stats['public.we"ird table']

    db.execute(b"UPDATE \"Voucher\" SET value = 2 WHERE code = 'B'")
    assert read_table_stats(q, s) == stats
    db.execute(b'DELETE FROM "VoucherRedemption"')
    assert read_table_stats(q, s)["public.VoucherRedemption"].row_count == 0


def test_table_stats_do_not_depend_on_insertion_order(
    db: psycopg.Connection[Any], other_pg_url: str
) -> None:
    rows = [f"('{i}', {i + 1})" for i in range(50)]
    db.execute(f'INSERT INTO "Voucher" (code, value) VALUES {", ".join(rows)}'.encode())
    with connect(other_pg_url) as other:
        other.execute(RICH_SCHEMA.encode())
        reversed_rows = ", ".join(reversed(rows))
        other.execute(f'INSERT INTO "Voucher" (code, value) VALUES {reversed_rows}'.encode())
        # Same content, except the serial ids were handed out in the other order.
        other.execute(b'UPDATE "Voucher" SET id = id + 1000')
        other.execute(b'UPDATE "Voucher" SET id = 1051 - id')
        other.execute(b'UPDATE "Voucher" SET "createdAt" = \'2024-01-01\'')
        db.execute(b'UPDATE "Voucher" SET "createdAt" = \'2024-01-01\'')
        mine = read_table_stats(query_fn(db), snap(db))["public.Voucher"]
        theirs = read_table_stats(query_fn(other), snap(other))["public.Voucher"]
        assert mine == theirs


def test_a_batched_read_is_the_same_as_one_query_at_a_time(
    db: psycopg.Connection[Any], pg_url: str
) -> None:
    """The dialect reads the catalog and the table stats in one pipeline (one round trip);
    the snapshot and the stats are exactly those of the queries run one by one, and a failing
    query in a batch is an error like any other, with the session still usable."""
    from backout.dialects import dialect_for
    from backout.dialects.base import Actor
    from backout.model.errors import DatabaseError
    from backout.model.urls import parse_url

    db.execute(b"INSERT INTO \"Voucher\" (code, value) VALUES ('A', 5), ('B', 7)")
    serial = read_postgres_snapshot(query_fn(db))
    url = parse_url(pg_url)
    dialect = dialect_for(url)
    with dialect.connect(url, actor=Actor.current()) as session:
        batched = dialect.snapshot(session)
        assert batched == serial
        assert dialect.table_stats(session, batched) == read_table_stats(query_fn(db), serial)
        with pytest.raises(DatabaseError):
            session.query_many([("SELECT 1", None), ("SELECT * FROM nowhere", None)])
        assert session.query_many([("SELECT 1", None), ("SELECT %s", (2,))]) == [[(1,)], [(2,)]]
