"""Small projects the reliability suite runs backout on.

The crash project has a base migration (a table with rows) and one migration under test that
changes schema and data in many statements, with short waits (``pg_sleep`` on PostgreSQL, a
counting query on SQLite) so that a kill lands inside its transaction often, not only in
Python's start-up. Its rollback undoes it, and a partial rollback rewrites data only.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CrashProject:
    """Where things are in a crash project, and the ids the commands use."""

    root: Path
    prisma: bool
    base: str
    change: str
    #: the key the ledger uses for :attr:`change`
    change_key: str
    partial: str = "tag"

    @property
    def backups(self) -> Path:
        """The backup folder."""
        return self.root / ".backout" / "backups"


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


PG_BASE = """
CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, qty integer NOT NULL);
INSERT INTO items SELECT g, 'item ' || g, g % 97 FROM generate_series(1, {rows}) g;
"""

PG_CHANGE = """
ALTER TABLE items ADD COLUMN note text;
CREATE TYPE mood AS ENUM ('calm', 'busy');
SELECT pg_sleep({pause});
CREATE TABLE audit (
    id integer PRIMARY KEY,
    item_id integer NOT NULL REFERENCES items (id),
    tag integer NOT NULL DEFAULT 0,
    mood mood NOT NULL DEFAULT 'calm'
);
INSERT INTO audit (id, item_id) SELECT id, id FROM items;
UPDATE items SET note = 'n' || id;
SELECT pg_sleep({pause});
CREATE INDEX audit_item_idx ON audit (item_id);
CREATE VIEW busy_items AS SELECT i.id, i.note FROM items i JOIN audit a ON a.item_id = i.id
    WHERE a.mood = 'busy';
COMMENT ON TABLE audit IS 'one row per item';
SELECT pg_sleep({pause});
"""

PG_ROLLBACK = """
-- backout:risk HIGH
-- backout:impact Drops audit, the mood type, the busy_items view and items.note
-- backout:verify SELECT to_regclass('audit') IS NULL
DROP VIEW busy_items;
SELECT pg_sleep({pause});
DROP INDEX audit_item_idx;
DROP TABLE audit;
SELECT pg_sleep({pause});
DROP TYPE mood;
ALTER TABLE items DROP COLUMN note;
SELECT pg_sleep({pause});
"""

PG_PARTIAL = """
-- backout:risk HIGH
-- backout:param v integer
-- backout:preview SELECT id, tag FROM audit WHERE tag <> :v ORDER BY id
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM audit WHERE tag <> :v)
UPDATE audit SET tag = :v, mood = 'busy';
SELECT pg_sleep({pause});
UPDATE items SET note = 'tag ' || :v WHERE id <= {half};
SELECT pg_sleep({pause});
"""

#: SQLite has no sleep(): a recursive count of this many steps takes a few tens of ms
_BURN = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) " + (
    "SELECT count(*) FROM c;"
)

SQLITE_BASE = """
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL);
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {rows})
INSERT INTO items (id, name, qty) SELECT x, 'item ' || x, x % 97 FROM g;
"""

SQLITE_CHANGE = """
ALTER TABLE items ADD COLUMN note TEXT;
{burn}
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items (id),
    tag INTEGER NOT NULL DEFAULT 0,
    mood TEXT NOT NULL DEFAULT 'calm' CHECK (mood IN ('calm', 'busy'))
);
INSERT INTO audit (id, item_id) SELECT id, id FROM items;
UPDATE items SET note = 'n' || id;
{burn}
CREATE INDEX audit_item_idx ON audit (item_id);
CREATE VIEW busy_items AS SELECT i.id, i.note FROM items i JOIN audit a ON a.item_id = i.id
    WHERE a.mood = 'busy';
CREATE TRIGGER audit_touch AFTER UPDATE OF tag ON audit BEGIN
    UPDATE items SET qty = qty WHERE id = NEW.item_id;
END;
{burn}
"""

SQLITE_ROLLBACK = """
-- backout:risk HIGH
-- backout:impact Drops audit, its trigger, the busy_items view and items.note
-- backout:verify SELECT count(*) = 0 FROM sqlite_master WHERE name = 'audit'
DROP VIEW busy_items;
{burn}
DROP TRIGGER audit_touch;
DROP INDEX audit_item_idx;
DROP TABLE audit;
{burn}
ALTER TABLE items DROP COLUMN note;
{burn}
"""

SQLITE_PARTIAL = """
-- backout:risk HIGH
-- backout:param v integer
-- backout:preview SELECT id, tag FROM audit WHERE tag <> :v ORDER BY id
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM audit WHERE tag <> :v)
UPDATE audit SET tag = :v, mood = 'busy';
{burn}
UPDATE items SET note = 'tag ' || :v WHERE id <= {half};
{burn}
"""


def crash_project(
    root: Path, dialect: str, *, rows: int | None = None, pause: float = 0.02, burn: int = 200_000
) -> CrashProject:
    """Write the crash project for ``dialect`` (PostgreSQL: Prisma layout; SQLite: plain).

    SQLite gets more rows (8,000 against 2,000), since it has no ``pg_sleep`` to stretch a run.
    """
    if dialect == "postgresql":
        rows = rows or 2000
        base, change = "20240101000000_base", "20240201000000_change"
        values = {"rows": rows, "pause": pause, "half": rows // 2}
        _write(
            root,
            {
                "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
                f"prisma/migrations/{base}/migration.sql": PG_BASE.format(**values),
                f"prisma/migrations/{change}/migration.sql": PG_CHANGE.format(**values),
                f"prisma/rollback/{change}_rollback.sql": PG_ROLLBACK.format(**values),
                f"prisma/rollback/{change}_rollback.tag.sql": PG_PARTIAL.format(**values),
                "backout.toml": 'layout = "prisma"\nlock_timeout = "5s"\n',
            },
        )
        return CrashProject(root, True, base, change, change_key=change)
    rows = rows or 8000
    base, change = "0001_base", "0002_change"
    values = {"rows": rows, "half": rows // 2, "burn": _BURN.format(n=burn)}
    _write(
        root,
        {
            f"migrations/{base}.up.sql": SQLITE_BASE.format(**values),
            f"migrations/{change}.up.sql": SQLITE_CHANGE.format(**values),
            f"migrations/{change}.down.sql": SQLITE_ROLLBACK.format(**values),
            f"migrations/{change}.down.tag.sql": SQLITE_PARTIAL.format(**values),
            "backout.toml": 'layout = "plain"\nlock_timeout = "5s"\n',
        },
    )
    return CrashProject(root, False, base, change, change_key="0002")
