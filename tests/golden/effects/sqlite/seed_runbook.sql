-- The seed runbook's data and table steps on SQLite. Verbatim except: SQLite has no enum types
-- (no DROP TYPE) and needs AS before a table alias in UPDATE.
DELETE FROM "VoucherRedemption";
DELETE FROM "Voucher";
DROP TABLE IF EXISTS "VoucherRedemption";
DROP TABLE IF EXISTS "Voucher";

UPDATE "Voucher" SET "currentUses" = 0, "status" = 'ACTIVE';
DELETE FROM "VoucherRedemption";
DELETE FROM "TokenTransaction" WHERE "source" = 'voucher_redemption';

SELECT * FROM "TokenTransaction"
WHERE "source" = 'voucher_redemption'
AND "createdAt" > '2024-01-01';

UPDATE "UserTokenBalance" AS utb
SET "balance" = utb."balance" - tt."amount"
FROM "TokenTransaction" tt
WHERE utb."userId" = tt."userId"
AND tt."source" = 'voucher_redemption'
AND tt."createdAt" > '2024-01-01';

DELETE FROM "TokenTransaction"
WHERE "source" = 'voucher_redemption'
AND "createdAt" > '2024-01-01';
