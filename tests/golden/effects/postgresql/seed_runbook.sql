-- The seed runbook's SQL (docs: "Database Migration Rollback Guide"), verbatim, step by step.

-- Step 2: Remove Dependent Data First
-- Delete all voucher redemptions first (foreign key constraint)
DELETE FROM "VoucherRedemption";

-- Delete all vouchers
DELETE FROM "Voucher";

-- Step 3: Drop Tables (If Full Rollback Needed)
-- Drop tables in correct order (respecting foreign keys)
DROP TABLE IF EXISTS "VoucherRedemption";
DROP TABLE IF EXISTS "Voucher";

-- Drop enums
DROP TYPE IF EXISTS "VoucherType";
DROP TYPE IF EXISTS "VoucherStatus";

-- Partial Rollback (Keep Structure, Clear Data)
-- Reset all vouchers to initial state
UPDATE "Voucher" SET "currentUses" = 0, "status" = 'ACTIVE';

-- Clear redemption history
DELETE FROM "VoucherRedemption";

-- Clear related token transactions
DELETE FROM "TokenTransaction" WHERE "source" = 'voucher_redemption';

-- Token Transaction Rollback
-- Find affected transactions
SELECT * FROM "TokenTransaction"
WHERE "source" = 'voucher_redemption'
AND "createdAt" > '2024-01-01';

-- Reverse specific transactions (adjust balances)
UPDATE "UserTokenBalance" utb
SET "balance" = utb."balance" - tt."amount"
FROM "TokenTransaction" tt
WHERE utb."userId" = tt."userId"
AND tt."source" = 'voucher_redemption'
AND tt."createdAt" > '2024-01-01';

-- Delete the transaction records
DELETE FROM "TokenTransaction"
WHERE "source" = 'voucher_redemption'
AND "createdAt" > '2024-01-01';
