-- Partial rollback of 20240315000000_add_voucher_system: reverse the tokens that voucher
-- redemptions granted after a cut-off (they were granted incorrectly).
--
-- "createdAt" is Prisma's TIMESTAMP(3) without time zone, holding UTC. The cut-off is converted
-- to UTC explicitly, so the result does not depend on the session's TimeZone setting.
--
-- backout:risk HIGH
-- backout:param since timestamptz
-- backout:impact Reduces each affected user's balance by the sum of that user's \
--   'voucher_redemption' transactions created after :since, then deletes those transactions
-- backout:impact VoucherRedemption rows and voucher usage counts are kept: the codes were used
-- backout:data-loss The 'voucher_redemption' token transactions created after :since (shown by \
--   the preview)
-- backout:manual Tell the affected users that the tokens were withdrawn
-- backout:preview SELECT tt."id", tt."userId", tt."amount", tt."createdAt" \
--   FROM "TokenTransaction" tt WHERE tt."source" = 'voucher_redemption' \
--   AND tt."createdAt" > (CAST(:since AS timestamptz) AT TIME ZONE 'UTC') \
--   ORDER BY tt."createdAt", tt."id"
-- backout:require SELECT NOT EXISTS (SELECT 1 FROM "UserTokenBalance" b JOIN \
--   (SELECT "userId", sum("amount") AS total FROM "TokenTransaction" \
--   WHERE "source" = 'voucher_redemption' \
--   AND "createdAt" > (CAST(:since AS timestamptz) AT TIME ZONE 'UTC') GROUP BY "userId") r \
--   ON r."userId" = b."userId" WHERE b."balance" - r.total < 0)
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM "TokenTransaction" \
--   WHERE "source" = 'voucher_redemption' \
--   AND "createdAt" > (CAST(:since AS timestamptz) AT TIME ZONE 'UTC'))
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM "UserTokenBalance" WHERE "balance" < 0)
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM "UserTokenBalance" b \
--   LEFT JOIN (SELECT "userId", sum("amount") AS total FROM "TokenTransaction" GROUP BY "userId") t \
--   ON t."userId" = b."userId" WHERE b."balance" <> coalesce(t.total, 0))

-- Adjust balances: once per user, by the sum of that user's affected transactions. (The
-- runbook's UPDATE ... FROM "TokenTransaction" subtracts only one transaction per user.)
UPDATE "UserTokenBalance" AS b
SET "balance" = b."balance" - r.total,
    "updatedAt" = now() AT TIME ZONE 'UTC'
FROM (
    SELECT "userId", sum("amount") AS total
    FROM "TokenTransaction"
    WHERE "source" = 'voucher_redemption'
      AND "createdAt" > (CAST(:since AS timestamptz) AT TIME ZONE 'UTC')
    GROUP BY "userId"
) AS r
WHERE b."userId" = r."userId";

-- Delete the transaction records.
DELETE FROM "TokenTransaction"
WHERE "source" = 'voucher_redemption'
  AND "createdAt" > (CAST(:since AS timestamptz) AT TIME ZONE 'UTC');
