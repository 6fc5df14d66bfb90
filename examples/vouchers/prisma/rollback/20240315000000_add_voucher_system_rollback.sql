-- Rollback for 20240315000000_add_voucher_system (full: removes the voucher system)
--
-- backout:risk HIGH
-- backout:impact Deletes all voucher data, then drops tables VoucherRedemption and Voucher (in \
--   foreign-key order) and enums VoucherType and VoucherStatus
-- backout:impact Token balances and TokenTransaction rows are not touched
-- backout:data-loss Every voucher and the whole redemption history
-- backout:data-loss Tokens granted by vouchers stay with the users: their TokenTransaction rows \
--   (source 'voucher_redemption') are kept but can no longer be traced to a voucher. Run the \
--   reverse-tokens or clear-data partial rollback first if the tokens must be taken back
-- backout:manual Remove models Voucher and VoucherRedemption, enums VoucherType and VoucherStatus, \
--   and the `voucherRedemptions` relation field of User from prisma/schema.prisma
-- backout:manual Run `yarn prisma generate`
-- backout:require SELECT count(*) = 0 FROM "VoucherRedemption" \
--   WHERE "createdAt" > (now() AT TIME ZONE 'UTC') - interval '5 minutes'
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM "UserTokenBalance" b \
--   LEFT JOIN (SELECT "userId", sum("amount") AS total FROM "TokenTransaction" GROUP BY "userId") t \
--   ON t."userId" = b."userId" WHERE b."balance" <> coalesce(t.total, 0))

-- Step 2 of the runbook: remove dependent data first (VoucherRedemption_voucherId_fkey is
-- ON DELETE RESTRICT).
DELETE FROM "VoucherRedemption";

DELETE FROM "Voucher";

-- Step 3: drop tables in foreign-key order, then the enums they used.
DROP TABLE IF EXISTS "VoucherRedemption";

DROP TABLE IF EXISTS "Voucher";

DROP TYPE IF EXISTS "VoucherType";

DROP TYPE IF EXISTS "VoucherStatus";
