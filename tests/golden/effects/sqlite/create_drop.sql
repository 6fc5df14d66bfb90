-- CREATE and DROP of tables, indexes and views.
CREATE TABLE IF NOT EXISTS "VoucherRedemption" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "voucherId" TEXT NOT NULL REFERENCES "Voucher" ("id") ON DELETE RESTRICT,
    "userId" TEXT NOT NULL,
    CONSTRAINT "VoucherRedemption_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    FOREIGN KEY ("id") REFERENCES "Ledger"
);
CREATE TEMP TABLE scratch (a, b);
CREATE TABLE main.archive AS SELECT * FROM "Voucher" WHERE "status" = 'EXPIRED';
CREATE VIRTUAL TABLE voucher_search USING fts5(code, description);
CREATE TABLE lookup (k TEXT PRIMARY KEY, v TEXT) STRICT;
CREATE TABLE pairs (a INTEGER, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE INDEX "Voucher_status_idx" ON "Voucher"("status");
CREATE UNIQUE INDEX IF NOT EXISTS voucher_code_lower ON "Voucher"(lower("code")) WHERE "code" IS NOT NULL;
CREATE VIEW active_vouchers AS SELECT * FROM "Voucher" WHERE "status" = 'ACTIVE';
CREATE VIEW IF NOT EXISTS redemption_counts (voucher, n) AS
    SELECT "voucherId", count(*) FROM "VoucherRedemption" GROUP BY 1;
DROP INDEX "Voucher_status_idx";
DROP INDEX IF EXISTS voucher_code_lower;
DROP VIEW active_vouchers;
DROP TABLE scratch;
DROP TABLE IF EXISTS main.archive;
