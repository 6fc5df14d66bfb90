"""SQLite catalog snapshots on a real database file: content, diffs, exclusions, stats."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backout.dialects.sqlite.catalog import (
    normalise_sql,
    read_sqlite_snapshot,
    read_table_stats,
)
from backout.model.schema import QueryFn, SchemaSnapshot, diff_schemas

RICH_SCHEMA = """
CREATE TABLE "Voucher" (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  code TEXT NOT NULL COLLATE NOCASE,
  type TEXT NOT NULL DEFAULT 'PERCENT' CHECK (type IN ('PERCENT', 'FIXED', 'GIFT')),
  status TEXT NOT NULL DEFAULT 'ACTIVE',
  value INTEGER NOT NULL CONSTRAINT value_positive CHECK (value > 0),
  "currentUses" INTEGER NOT NULL DEFAULT 0,
  "doubledUses" INTEGER GENERATED ALWAYS AS ("currentUses" * 2) STORED,
  label TEXT AS (upper(code)),
  "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT voucher_code_uq UNIQUE (code)
);
CREATE TABLE "VoucherRedemption" (
  id INTEGER PRIMARY KEY,
  "voucherId" INTEGER NOT NULL REFERENCES "Voucher" ON DELETE CASCADE,
  "userId" TEXT NOT NULL,
  "giftOf" INTEGER,
  CONSTRAINT gift_fk FOREIGN KEY ("giftOf") REFERENCES "Voucher"(id)
    ON UPDATE SET NULL DEFERRABLE INITIALLY DEFERRED,
  UNIQUE ("voucherId", "userId")
);
CREATE INDEX voucher_active_code ON "Voucher" (lower(code) DESC) WHERE status = 'ACTIVE';
CREATE INDEX voucher_status ON "Voucher" (status, "createdAt");
CREATE TABLE "we""ird table" ("col umn" INTEGER, "voucher id" INTEGER REFERENCES "Voucher"(id),
  note TEXT DEFAULT -1);
CREATE INDEX "we""ird index" ON "we""ird table" ("col umn");
CREATE TABLE tags (name TEXT PRIMARY KEY, weight REAL) WITHOUT ROWID;
CREATE VIEW active_vouchers AS SELECT id, code FROM "Voucher" WHERE status = 'ACTIVE';
CREATE TRIGGER voucher_touch AFTER UPDATE ON "Voucher" FOR EACH ROW
BEGIN
  UPDATE "Voucher" SET "currentUses" = "currentUses" WHERE id = NEW.id;
END;
CREATE TRIGGER "we""ird trigger" AFTER INSERT ON "we""ird table" BEGIN SELECT 1; END;
"""

# The same schema, written differently: other order, case, spacing and comments.
RICH_SCHEMA_REWRITTEN = """
create table tags (name text primary key, weight real) without rowid;
create table "Voucher"(
  id integer primary key autoincrement,  -- the key
  code text not null collate nocase,
  type text not null default 'PERCENT' check(type in ('PERCENT','FIXED','GIFT')),
  status text not null default 'ACTIVE',
  value integer not null constraint value_positive check(value>0),
  "currentUses" integer not null default 0,
  "doubledUses" integer generated always as ("currentUses"*2) stored,
  label text as (upper(code)),
  "createdAt" DATETIME not null default current_timestamp,
  constraint voucher_code_uq unique(code)
);
create table "we""ird table" ("col umn" INTEGER, "voucher id" INTEGER references "Voucher"(id),
  note TEXT default -1);
create table "VoucherRedemption" (
  id INTEGER primary key,
  "voucherId" INTEGER not null references "Voucher" on delete cascade,
  "userId" TEXT not null,
  "giftOf" INTEGER,
  constraint gift_fk foreign key ("giftOf") references "Voucher"(id)
    on update set null deferrable initially deferred,
  unique ("voucherId", "userId")
);
create trigger "we""ird trigger" after insert on "we""ird table" begin select 1; end;
create view active_vouchers as select id, code from "Voucher" where status = 'ACTIVE';
create index voucher_status on "Voucher"(status, "createdAt");
create index voucher_active_code on "Voucher"(lower(code) desc) where status='ACTIVE';
create index "we""ird index" on "we""ird table"("col umn");
create trigger voucher_touch after update on "Voucher" for each row
begin
  /* keep it */ update "Voucher" set "currentUses" = "currentUses" where id = NEW.id;
end;
"""

BOOKKEEPING = """
CREATE TABLE _prisma_migrations (id TEXT PRIMARY KEY, checksum TEXT NOT NULL);
CREATE TABLE backout_history (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
CREATE INDEX backout_history_name ON backout_history (name);
CREATE TRIGGER backout_history_guard BEFORE DELETE ON backout_history BEGIN SELECT 1; END;
"""


def connect(path: Path | str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def query_fn(conn: sqlite3.Connection) -> QueryFn:
    """A QueryFn like ``SqliteSession.query``: ``%s`` placeholders become ``?``."""

    def query(sql: str, params: Any) -> list[tuple[Any, ...]]:
        if params is None:
            return list(conn.execute(sql).fetchall())
        return list(conn.execute(sql.replace("%s", "?"), params).fetchall())

    return query


@pytest.fixture
def db(sqlite_path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(sqlite_path)
    conn.executescript(RICH_SCHEMA)
    yield conn
    conn.close()


def snap(conn: sqlite3.Connection, **kwargs: Any) -> SchemaSnapshot:
    return read_sqlite_snapshot(query_fn(conn), **kwargs)


# --------------------------------------------------------------------------------------------
# What a snapshot contains


def test_snapshot_reads_tables_indexes_views_triggers(db: sqlite3.Connection) -> None:
    s = snap(db)
    assert s.dialect == "sqlite"
    assert s.schemas == ()
    assert (s.enums, s.sequences, s.functions, s.comments) == ({}, {}, {}, {})
    assert set(s.tables) == {"Voucher", "VoucherRedemption", 'we"ird table', "tags"}

    voucher = s.tables["Voucher"]
    assert voucher.schema is None
    columns = {c.name: c for c in voucher.columns}
    assert [c.name for c in voucher.columns] == [
        "id",
        "code",
        "type",
        "status",
        "value",
        "currentUses",
        "doubledUses",
        "label",
        "createdAt",
    ]
    assert (columns["id"].type, columns["id"].identity) == ("INTEGER", "AUTOINCREMENT")
    assert (columns["code"].nullable, columns["code"].collation) == (False, "NOCASE")
    assert columns["type"].default == "'PERCENT'"
    assert columns["createdAt"].default == "CURRENT_TIMESTAMP"
    assert (columns["doubledUses"].generated, columns["doubledUses"].generated_storage) == (
        '"currentUses" * 2',
        "STORED",
    )
    assert (columns["label"].generated, columns["label"].generated_storage) == (
        "upper(code)",
        "VIRTUAL",
    )
    constraints = {c.key: c for c in voucher.constraints}
    assert set(constraints) == {
        "PRIMARY KEY",
        "CHECK (type IN ('PERCENT', 'FIXED', 'GIFT'))",
        "value_positive",
        "voucher_code_uq",
    }
    assert constraints["PRIMARY KEY"].columns == ("id",)
    assert constraints["value_positive"].definition == "CHECK (value > 0)"
    assert (constraints["voucher_code_uq"].kind, constraints["voucher_code_uq"].columns) == (
        "unique",
        ("code",),
    )

    redemption = s.tables["VoucherRedemption"]
    fks = {fk.key: fk for fk in redemption.foreign_keys}
    implicit = fks["FOREIGN KEY (voucherId) REFERENCES Voucher"]
    # "REFERENCES Voucher" without columns means Voucher's primary key.
    assert (implicit.referenced_table, implicit.referenced_columns) == ("Voucher", ("id",))
    assert (implicit.on_delete, implicit.on_update, implicit.deferrable) == (
        "CASCADE",
        "NO ACTION",
        False,
    )
    gift = fks["gift_fk"]
    assert (gift.columns, gift.on_update, gift.deferrable, gift.initially_deferred) == (
        ("giftOf",),
        "SET NULL",
        True,
        True,
    )
    # SQLite names are case-insensitive: bare where that is unambiguous.
    assert gift.definition == (
        "FOREIGN KEY (giftOf) REFERENCES Voucher(id) ON UPDATE SET NULL "
        "DEFERRABLE INITIALLY DEFERRED"
    )
    unique = next(c for c in redemption.constraints if c.kind == "unique")
    assert (unique.name, unique.columns) == (None, ("voucherId", "userId"))

    weird = s.tables['we"ird table']
    assert [c.name for c in weird.columns] == ["col umn", "voucher id", "note"]
    assert weird.columns[2].default == "-1"
    assert s.tables["tags"].options == ("WITHOUT ROWID",)
    assert s.tables["tags"].primary_key is not None

    assert set(s.indexes) == {"voucher_active_code", "voucher_status", 'we"ird index'}
    partial = s.indexes["voucher_active_code"]
    assert (partial.table, partial.columns, partial.unique) == ("Voucher", ("lower(code)",), False)
    assert partial.predicate == "status = 'ACTIVE'"
    assert partial.definition == (
        "CREATE INDEX voucher_active_code ON \"Voucher\"(lower(code) DESC) WHERE status = 'ACTIVE'"
    )
    assert s.indexes["voucher_status"].columns == ("status", "createdAt")
    assert s.indexes['we"ird index'].columns == ('"col umn"',)

    assert s.views["active_vouchers"].definition == (
        "CREATE VIEW active_vouchers AS SELECT id, code FROM \"Voucher\" WHERE status = 'ACTIVE'"
    )
    assert s.triggers["Voucher.voucher_touch"].definition == (
        'CREATE TRIGGER voucher_touch AFTER UPDATE ON "Voucher" FOR EACH ROW BEGIN UPDATE '
        '"Voucher" SET "currentUses" = "currentUses" WHERE id = NEW.id; END'
    )
    assert 'we"ird table.we"ird trigger' in s.triggers


def test_round_trip_of_a_real_snapshot(db: sqlite3.Connection) -> None:
    s = snap(db)
    assert SchemaSnapshot.from_dict(s.to_dict()) == s


def test_bookkeeping_and_internal_tables_are_left_out(db: sqlite3.Connection) -> None:
    before = snap(db)
    db.executescript(BOOKKEEPING)
    db.execute("INSERT INTO backout_history (name) VALUES ('x')")  # fills sqlite_sequence
    after = snap(db)
    assert diff_schemas(before, after).is_empty()
    assert after.fingerprint() == before.fingerprint()
    assert not any(name.startswith(("sqlite_", "backout_", "_prisma")) for name in after.tables)


def test_exclude_leaves_out_a_table_with_its_indexes_and_triggers(
    db: sqlite3.Connection,
) -> None:
    seen: list[tuple[str, str]] = []

    def exclude(schema: str, name: str) -> bool:
        seen.append((schema, name))
        return name in ('we"ird table', "active_vouchers", "voucher_status")

    s = snap(db, exclude=exclude)
    assert ("main", "Voucher") in seen
    assert 'we"ird table' not in s.tables
    assert 'we"ird index' not in s.indexes
    assert 'we"ird table.we"ird trigger' not in s.triggers
    assert "active_vouchers" not in s.views
    assert set(s.indexes) == {"voucher_active_code"}


def test_snapshot_changes_nothing(db: sqlite3.Connection, sqlite_path: Path) -> None:
    before = sqlite_path.read_bytes()
    db.execute("BEGIN")
    snap(db)
    assert db.in_transaction
    db.execute("ROLLBACK")
    assert sqlite_path.read_bytes() == before


# --------------------------------------------------------------------------------------------
# Changes and their lines


def rebuild_redemption(fk_clause: str) -> str:
    """The 12-step table rebuild a rollback script uses to change a constraint."""
    return f"""
    PRAGMA foreign_keys = OFF;
    CREATE TABLE "VoucherRedemption_new" (
      id INTEGER PRIMARY KEY,
      "voucherId" INTEGER NOT NULL REFERENCES "Voucher" ON DELETE CASCADE,
      "userId" TEXT NOT NULL,
      "giftOf" INTEGER,
      CONSTRAINT gift_fk FOREIGN KEY ("giftOf") REFERENCES "Voucher"(id) {fk_clause},
      UNIQUE ("voucherId", "userId")
    );
    INSERT INTO "VoucherRedemption_new" SELECT * FROM "VoucherRedemption";
    DROP TABLE "VoucherRedemption";
    ALTER TABLE "VoucherRedemption_new" RENAME TO "VoucherRedemption";
    """


CHANGES: list[tuple[str, str, list[str]]] = [
    (
        "column added",
        'ALTER TABLE "Voucher" ADD COLUMN "maxUses" INTEGER NOT NULL DEFAULT 1',
        ['column "Voucher"."maxUses" added (INTEGER NOT NULL DEFAULT 1)'],
    ),
    (
        "column dropped",
        'ALTER TABLE "we""ird table" DROP COLUMN note',
        ['column "we""ird table"."note" removed (TEXT DEFAULT -1)'],
    ),
    (
        "table dropped",
        'DROP TABLE "we""ird table"',
        [
            'table "we""ird table" removed',
            'index "we""ird index" removed on "we""ird table": '
            'CREATE INDEX "we""ird index" ON "we""ird table"("col umn")',
            'trigger "we""ird trigger" on "we""ird table" removed',
        ],
    ),
    (
        "table added",
        'CREATE TABLE "Extra" (id INTEGER PRIMARY KEY)',
        ['table "Extra" added'],
    ),
    (
        "partial index predicate",
        'DROP INDEX voucher_active_code; CREATE INDEX voucher_active_code ON "Voucher" '
        "(lower(code) DESC) WHERE status = 'EXPIRED'",
        ["index \"voucher_active_code\" changed predicate: status = 'ACTIVE' → status = 'EXPIRED'"],
    ),
    (
        "index made unique",
        'DROP INDEX voucher_status; CREATE UNIQUE INDEX voucher_status ON "Voucher" '
        '(status, "createdAt")',
        ['index "voucher_status" changed uniqueness: not unique → UNIQUE'],
    ),
    (
        "index order only in the definition",
        'DROP INDEX voucher_status; CREATE INDEX voucher_status ON "Voucher" '
        '(status DESC, "createdAt")',
        [
            'index "voucher_status" changed definition: CREATE INDEX voucher_status ON '
            '"Voucher"(status, "createdAt") → CREATE INDEX voucher_status ON '
            '"Voucher"(status DESC, "createdAt")'
        ],
    ),
    (
        "foreign key action",
        rebuild_redemption("ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED"),
        ['foreign key "VoucherRedemption"."gift_fk" changed ON UPDATE: SET NULL → CASCADE'],
    ),
    (
        "foreign key no longer deferrable",
        rebuild_redemption("ON UPDATE SET NULL"),
        [
            'foreign key "VoucherRedemption"."gift_fk" changed deferrability: '
            "DEFERRABLE → NOT DEFERRABLE",
            'foreign key "VoucherRedemption"."gift_fk" changed initial mode: '
            "INITIALLY DEFERRED → INITIALLY IMMEDIATE",
        ],
    ),
    (
        "view redefined",
        "DROP VIEW active_vouchers; CREATE VIEW active_vouchers AS "
        "SELECT id, code FROM \"Voucher\" WHERE status = 'EXPIRED'",
        ['view "active_vouchers" changed definition'],
    ),
    (
        "trigger dropped",
        'DROP TRIGGER "we""ird trigger"',
        ['trigger "we""ird trigger" on "we""ird table" removed'],
    ),
    (
        "trigger body changed",
        'DROP TRIGGER "we""ird trigger"; CREATE TRIGGER "we""ird trigger" AFTER INSERT ON '
        '"we""ird table" BEGIN SELECT 2; END',
        [
            'trigger "we""ird trigger" on "we""ird table" changed definition: '
            'CREATE TRIGGER "we""ird trigger" AFTER INSERT ON "we""ird table" BEGIN SELECT 1; '
            'END → CREATE TRIGGER "we""ird trigger" AFTER INSERT ON "we""ird table" BEGIN '
            "SELECT 2; END"
        ],
    ),
]


@pytest.mark.parametrize(
    ("sql", "expected"), [(sql, e) for _, sql, e in CHANGES], ids=[n for n, _, _ in CHANGES]
)
def test_change_is_detected_precisely(
    db: sqlite3.Connection, sql: str, expected: list[str]
) -> None:
    before = snap(db)
    db.executescript(sql)
    after = snap(db)
    assert after.fingerprint() != before.fingerprint()
    diff = diff_schemas(before, after)
    assert diff.lines() == expected
    assert diff.column_order == ()


def test_check_constraint_change_via_rebuild(db: sqlite3.Connection) -> None:
    before = snap(db)
    db.executescript(
        """
        PRAGMA foreign_keys = OFF;
        CREATE TABLE t_new ("col umn" INTEGER CHECK ("col umn" > 0), "voucher id" INTEGER
          REFERENCES "Voucher"(id), note TEXT DEFAULT -1);
        DROP TABLE "we""ird table";
        ALTER TABLE t_new RENAME TO "we""ird table";
        CREATE INDEX "we""ird index" ON "we""ird table" ("col umn");
        CREATE TRIGGER "we""ird trigger" AFTER INSERT ON "we""ird table" BEGIN SELECT 1; END;
        """
    )
    assert diff_schemas(before, snap(db)).lines() == [
        'constraint CHECK ("col umn" > 0) on "we""ird table" added'
    ]


def test_rebuilding_a_table_identically_keeps_the_fingerprint(db: sqlite3.Connection) -> None:
    before = snap(db)
    db.executescript(rebuild_redemption("ON UPDATE SET NULL DEFERRABLE INITIALLY DEFERRED"))
    after = snap(db)
    assert diff_schemas(before, after).is_empty()
    assert after.fingerprint() == before.fingerprint()


def test_same_schema_written_differently_has_the_same_fingerprint(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    other = connect(tmp_path / "other.db")
    try:
        other.executescript(RICH_SCHEMA_REWRITTEN)
        diff = diff_schemas(snap(db), snap(other))
        assert diff.lines() == []
        assert snap(other).fingerprint() == snap(db).fingerprint()
        other.execute('ALTER TABLE tags ADD COLUMN "extra" TEXT')
        assert snap(other).fingerprint() != snap(db).fingerprint()
    finally:
        other.close()


def test_drop_and_readd_column_is_a_column_order_change(db: sqlite3.Connection) -> None:
    db.execute('CREATE TABLE "odd ""one""" ("a b" TEXT, c INTEGER, d REAL)')
    before = snap(db)
    db.execute('ALTER TABLE "odd ""one""" DROP COLUMN "a b"')
    db.execute('ALTER TABLE "odd ""one""" ADD COLUMN "a b" TEXT')
    after = snap(db)
    assert after.fingerprint() != before.fingerprint()
    diff = diff_schemas(before, after)
    assert diff.changes == ()
    assert diff.is_empty(ignore_column_order=True)
    assert [c.detail for c in diff.column_order] == [
        'table "odd ""one""" changed column order: (a b, c, d) → (c, d, a b)'
    ]


def test_normalise_sql_ignores_layout_but_not_content() -> None:
    assert normalise_sql("create  index x\n on t(a) -- why\n where a>0") == (
        "CREATE INDEX x ON t(a) WHERE a > 0"
    )
    assert normalise_sql("SELECT 'a  b'") == "SELECT 'a  b'"  # strings untouched
    assert normalise_sql('SELECT "Mixed Case"') == 'SELECT "Mixed Case"'
    assert normalise_sql("x = -1") != normalise_sql("x = 1")


# --------------------------------------------------------------------------------------------
# Table statistics


def test_table_stats_change_with_content_only(db: sqlite3.Connection, tmp_path: Path) -> None:
    db.executescript(
        """
        INSERT INTO "Voucher" (code, value, "createdAt") VALUES
          ('A', 1, '2024-01-01'), ('B', 2, '2024-01-01'), ('C', 3, '2024-01-01');
        INSERT INTO "VoucherRedemption" ("voucherId", "userId") VALUES (1, 'u1');
        INSERT INTO "we""ird table" VALUES (1, 1, 'x');
        """
    )
    s = snap(db)
    q = query_fn(db)
    stats = read_table_stats(q, s)
    assert set(stats) == set(s.tables)
    assert [stats[k].row_count for k in ("Voucher", "VoucherRedemption", 'we"ird table')] == [
        3,
        1,
        1,
    ]
    assert stats["tags"].row_count == 0

    db.execute("UPDATE \"Voucher\" SET value = 5 WHERE code = 'B'")
    changed = read_table_stats(q, s)
    assert changed["Voucher"].checksum != stats["Voucher"].checksum
    assert changed["Voucher"].row_count == 3
    assert {k: v for k, v in changed.items() if k != "Voucher"} == {
        k: v for k, v in stats.items() if k != "Voucher"
    }
    db.execute("UPDATE \"Voucher\" SET value = 2 WHERE code = 'B'")
    assert read_table_stats(q, s) == stats

    # A value of another type is another value (a column without affinity keeps types).
    db.execute("CREATE TABLE loose (v)")
    loose = snap(db)
    db.execute("INSERT INTO loose VALUES (1)")
    as_int = read_table_stats(q, loose)["loose"]
    db.execute("UPDATE loose SET v = '1'")
    assert read_table_stats(q, loose)["loose"] != as_int
    db.execute("UPDATE loose SET v = 1")
    assert read_table_stats(q, loose)["loose"] == as_int

    # Same rows, inserted in another order into another database: same stats.
    other = connect(tmp_path / "other.db")
    try:
        other.executescript(RICH_SCHEMA)
        other.executescript(
            """
            INSERT INTO "Voucher" (id, code, value, "createdAt") VALUES
              (3, 'C', 3, '2024-01-01'), (1, 'A', 1, '2024-01-01'), (2, 'B', 2, '2024-01-01');
            """
        )
        theirs = read_table_stats(query_fn(other), snap(other))
        assert theirs["Voucher"] == read_table_stats(q, s)["Voucher"]
    finally:
        other.close()
