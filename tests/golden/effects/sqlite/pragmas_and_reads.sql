-- PRAGMAs, transaction control, maintenance and reads.
PRAGMA foreign_keys = OFF;
PRAGMA main.user_version = 7;
PRAGMA journal_mode(WAL);
PRAGMA foreign_key_check;
PRAGMA table_info("Voucher");
PRAGMA integrity_check;
BEGIN IMMEDIATE;
SAVEPOINT step;
SELECT count(*) FROM "Voucher";
RELEASE step;
COMMIT;
ANALYZE;
REINDEX "Voucher";
EXPLAIN QUERY PLAN DELETE FROM "Voucher";
VACUUM;
