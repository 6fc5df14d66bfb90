-- Settings, transaction control, locks and reads: no effect on schema or rows, except that
-- search_path decides where later unqualified names resolve.
SET lock_timeout = '2s';
SET LOCAL statement_timeout TO 60000;
BEGIN;
LOCK TABLE "Voucher" IN ACCESS EXCLUSIVE MODE;
SELECT count(*) FROM "Voucher" WHERE "status" = 'ACTIVE';
SELECT * FROM "VoucherRedemption" FOR UPDATE;
EXPLAIN DELETE FROM "Voucher";
EXPLAIN (ANALYZE, BUFFERS) DELETE FROM "VoucherRedemption" WHERE "createdAt" < now();
SET search_path TO billing, public;
DROP TABLE invoices;
CREATE TABLE invoices (id int);
UPDATE public.settings SET value = 'x';
RESET search_path;
DROP TABLE invoices;
COMMIT;
ANALYZE "Voucher";
