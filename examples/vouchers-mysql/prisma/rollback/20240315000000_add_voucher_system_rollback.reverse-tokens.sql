-- Partial rollback of 20240315000000_add_voucher_system: reverse the tokens that voucher
-- redemptions granted after a cut-off (they were granted incorrectly).
--
-- `createdAt` is Prisma's DATETIME(3) holding UTC. backout binds :since (a timestamptz) as a
-- UTC date-time and its sessions run with time_zone '+00:00', so the comparison is in UTC and
-- can use the (`source`, `createdAt`) index. Only DML: one transaction.
--
-- backout:risk HIGH
-- backout:param since timestamptz
-- backout:impact Reduces each affected user's balance by the sum of that user's \
--   'voucher_redemption' transactions created after :since, then deletes those transactions
-- backout:impact VoucherRedemption rows and voucher usage counts are kept: the codes were used
-- backout:data-loss The 'voucher_redemption' token transactions created after :since (shown by \
--   the preview)
-- backout:manual Tell the affected users that the tokens were withdrawn
-- backout:preview SELECT tt.`id`, tt.`userId`, tt.`amount`, tt.`createdAt` \
--   FROM `TokenTransaction` tt WHERE tt.`source` = 'voucher_redemption' \
--   AND tt.`createdAt` > :since ORDER BY tt.`createdAt`, tt.`id`
-- backout:require SELECT NOT EXISTS (SELECT 1 FROM `UserTokenBalance` b JOIN \
--   (SELECT `userId`, SUM(`amount`) AS total FROM `TokenTransaction` \
--   WHERE `source` = 'voucher_redemption' AND `createdAt` > :since GROUP BY `userId`) r \
--   ON r.`userId` = b.`userId` WHERE b.`balance` - r.total < 0)
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM `TokenTransaction` \
--   WHERE `source` = 'voucher_redemption' AND `createdAt` > :since)
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM `UserTokenBalance` WHERE `balance` < 0)
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM `UserTokenBalance` b \
--   LEFT JOIN (SELECT `userId`, SUM(`amount`) AS total FROM `TokenTransaction` GROUP BY `userId`) t \
--   ON t.`userId` = b.`userId` WHERE b.`balance` <> COALESCE(t.total, 0))

-- Adjust balances: once per user, by the sum of that user's affected transactions.
UPDATE `UserTokenBalance` AS b
JOIN (
    SELECT `userId`, SUM(`amount`) AS total
    FROM `TokenTransaction`
    WHERE `source` = 'voucher_redemption'
      AND `createdAt` > :since
    GROUP BY `userId`
) AS r ON r.`userId` = b.`userId`
SET b.`balance` = b.`balance` - r.total,
    b.`updatedAt` = UTC_TIMESTAMP(3);

-- Delete the transaction records.
DELETE FROM `TokenTransaction`
WHERE `source` = 'voucher_redemption'
  AND `createdAt` > :since;
