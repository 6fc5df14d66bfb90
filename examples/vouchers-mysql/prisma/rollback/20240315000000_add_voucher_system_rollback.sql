-- Rollback for 20240315000000_add_voucher_system (full: removes the voucher system)
--
-- MySQL/MariaDB commit every DROP TABLE implicitly: no transaction can undo this script
-- part-way. backout journals each statement; if it stops, `backout status` says where, and
-- `backout rollback --resume` or `backout rollback --undo-partial` (which restores the backup
-- taken before the run: a DELETE and a DROP TABLE have no inverse) finish or undo it.
--
-- backout:risk HIGH
-- backout:impact Deletes all voucher data, then drops tables VoucherRedemption and Voucher (in \
--   foreign-key order); the voucher enums are column types on MySQL and go with their table
-- backout:impact Token balances and TokenTransaction rows are not touched
-- backout:data-loss Every voucher and the whole redemption history
-- backout:data-loss Tokens granted by vouchers stay with the users: their TokenTransaction rows \
--   (source 'voucher_redemption') are kept but can no longer be traced to a voucher. Run the \
--   reverse-tokens or clear-data partial rollback first if the tokens must be taken back
-- backout:manual Remove models Voucher and VoucherRedemption, enums VoucherType and VoucherStatus, \
--   and the `voucherRedemptions` relation field of User from prisma/schema.prisma
-- backout:manual Run `yarn prisma generate`
-- backout:require SELECT count(*) = 0 FROM `VoucherRedemption` \
--   WHERE `createdAt` > UTC_TIMESTAMP(3) - INTERVAL 5 MINUTE
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM `UserTokenBalance` b \
--   LEFT JOIN (SELECT `userId`, SUM(`amount`) AS total FROM `TokenTransaction` GROUP BY `userId`) t \
--   ON t.`userId` = b.`userId` WHERE b.`balance` <> COALESCE(t.total, 0))

-- Step 2 of the runbook: remove dependent data first (VoucherRedemption_voucherId_fkey is
-- ON DELETE RESTRICT).
DELETE FROM `VoucherRedemption`;

DELETE FROM `Voucher`;

-- Step 3: drop tables in foreign-key order.
DROP TABLE IF EXISTS `VoucherRedemption`;

DROP TABLE IF EXISTS `Voucher`;
