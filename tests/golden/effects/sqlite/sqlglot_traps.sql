-- Valid SQLite that sqlglot misreads or cannot read. Each is either rewritten to a form it
-- reads correctly, checked against SQLite itself, or reported as needing review.

-- sqlglot reads this as index "main" on table "i": the schema is taken off first.
CREATE INDEX main."Voucher_code_idx" ON "Voucher" ("code");

-- INDEXED BY names an index, not a table that is read.
DELETE FROM "Voucher" INDEXED BY "Voucher_code_idx" WHERE "code" = 'X';

-- COLUMN is optional in DROP COLUMN; sqlglot needs it.
ALTER TABLE "Voucher" DROP "legacy";

-- REPLACE INTO and UPDATE OR <conflict> are rewritten.
REPLACE INTO "Voucher" ("id", "code") VALUES ('v1', 'A');
UPDATE OR REPLACE "Voucher" SET "code" = 'B' WHERE "id" = 'v1';

-- sqlglot falls back to a raw command: needs review.
CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
ALTER TABLE "Voucher" ADD COLUMN untyped;

-- sqlglot rejects conflict clauses on column constraints: needs review.
CREATE TABLE dedup (code TEXT UNIQUE ON CONFLICT IGNORE);

-- sqlglot reads these as a column and an alias; they are maintenance and transaction control.
REINDEX;
SAVEPOINT before_cleanup;
RELEASE before_cleanup;
