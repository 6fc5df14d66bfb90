-- Partial rollback of 20240315000000_add_voucher_system: reverse the tokens that voucher
-- redemptions granted after a cut-off (they were granted incorrectly).
--
-- "createdAt" holds ISO-8601 text in UTC ('YYYY-MM-DD HH:MM:SS.SSS'). The cut-off is normalised
-- to the same text form with strftime(), which also converts a '+HH:MM' offset to UTC, so the
-- text comparison is a time comparison and can use the ("source", "createdAt") index.
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
--   AND tt."createdAt" > strftime('%Y-%m-%d %H:%M:%f', :since) \
--   ORDER BY tt."createdAt", tt."id"
-- backout:require SELECT strftime('%Y-%m-%d %H:%M:%f', :since) IS NOT NULL
-- backout:require SELECT NOT EXISTS (SELECT 1 FROM "UserTokenBalance" b JOIN \
--   (SELECT "userId", sum("amount") AS total FROM "TokenTransaction" \
--   WHERE "source" = 'voucher_redemption' \
--   AND "createdAt" > strftime('%Y-%m-%d %H:%M:%f', :since) GROUP BY "userId") r \
--   ON r."userId" = b."userId" WHERE b."balance" - r.total < 0)
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM "TokenTransaction" \
--   WHERE "source" = 'voucher_redemption' \
--   AND "createdAt" > strftime('%Y-%m-%d %H:%M:%f', :since))
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM "UserTokenBalance" WHERE "balance" < 0)
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM "UserTokenBalance" b \
--   LEFT JOIN (SELECT "userId", sum("amount") AS total FROM "TokenTransaction" GROUP BY "userId") t \
--   ON t."userId" = b."userId" WHERE b."balance" <> coalesce(t.total, 0))

-- Adjust balances: once per user, by the sum of that user's affected transactions. (The
-- runbook's UPDATE ... FROM "TokenTransaction" subtracts only one transaction per user.) The sums
-- are computed once, in one pass over the affected transactions, and joined to the balances by
-- "userId" (UPDATE ... FROM, SQLite 3.33+): a correlated subquery per balance would make SQLite
-- search the ("source", "createdAt") range again for every user (49 s at 10,000 users; `backout
-- plan` warns about such a statement).
UPDATE "UserTokenBalance"
SET "balance" = "UserTokenBalance"."balance" - r.total,
    "updatedAt" = strftime('%Y-%m-%d %H:%M:%f', 'now')
FROM (
    SELECT "userId", sum("amount") AS total
    FROM "TokenTransaction"
    WHERE "source" = 'voucher_redemption'
      AND "createdAt" > strftime('%Y-%m-%d %H:%M:%f', :since)
    GROUP BY "userId"
) AS r
WHERE "UserTokenBalance"."userId" = r."userId";

-- Delete the transaction records.
DELETE FROM "TokenTransaction"
WHERE "source" = 'voucher_redemption'
  AND "createdAt" > strftime('%Y-%m-%d %H:%M:%f', :since);
