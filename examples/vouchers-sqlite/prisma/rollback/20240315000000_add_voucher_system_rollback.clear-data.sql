-- Partial rollback of 20240315000000_add_voucher_system: keep the structure, clear the data.
--
-- The runbook's version deletes the 'voucher_redemption' token transactions but leaves the
-- balances alone, so every user who redeemed a voucher keeps tokens that no transaction
-- explains. This version first takes the granted tokens back from each balance (summed per
-- user), so that a balance stays the sum of the user's TokenTransaction amounts.
-- Timestamps are ISO-8601 text in UTC ('YYYY-MM-DD HH:MM:SS.SSS'), as everywhere in this example.
--
-- backout:risk HIGH
-- backout:impact Takes back every token granted by a voucher: each user's balance is reduced by \
--   the sum of that user's 'voucher_redemption' transactions, which are then deleted
-- backout:impact Deletes every VoucherRedemption row
-- backout:impact Resets every Voucher to "currentUses" = 0; vouchers that were EXHAUSTED become \
--   ACTIVE again, while INACTIVE (switched off by an admin) and EXPIRED vouchers keep their status
-- backout:data-loss The whole redemption history, and every token transaction with source \
--   'voucher_redemption'
-- backout:manual Tell the affected users that tokens granted by vouchers were withdrawn
-- backout:require SELECT NOT EXISTS (SELECT 1 FROM "UserTokenBalance" b JOIN \
--   (SELECT "userId", sum("amount") AS total FROM "TokenTransaction" \
--   WHERE "source" = 'voucher_redemption' GROUP BY "userId") r \
--   ON r."userId" = b."userId" WHERE b."balance" - r.total < 0)
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM "VoucherRedemption") \
--   AND NOT EXISTS (SELECT 1 FROM "TokenTransaction" WHERE "source" = 'voucher_redemption') \
--   AND NOT EXISTS (SELECT 1 FROM "Voucher" WHERE "currentUses" <> 0 OR "status" = 'EXHAUSTED')
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM "UserTokenBalance" b \
--   LEFT JOIN (SELECT "userId", sum("amount") AS total FROM "TokenTransaction" GROUP BY "userId") t \
--   ON t."userId" = b."userId" WHERE b."balance" <> coalesce(t.total, 0))

-- Take the granted tokens back, once per user with the sum of that user's grants.
UPDATE "UserTokenBalance"
SET "balance" = "balance" - (
        SELECT sum(tt."amount")
        FROM "TokenTransaction" AS tt
        WHERE tt."userId" = "UserTokenBalance"."userId"
          AND tt."source" = 'voucher_redemption'
    ),
    "updatedAt" = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE "userId" IN (
    SELECT "userId" FROM "TokenTransaction" WHERE "source" = 'voucher_redemption'
);

-- Clear related token transactions.
DELETE FROM "TokenTransaction" WHERE "source" = 'voucher_redemption';

-- Clear redemption history.
DELETE FROM "VoucherRedemption";

-- Reset vouchers to their initial state.
UPDATE "Voucher"
SET "currentUses" = 0,
    "status" = CASE WHEN "status" = 'EXHAUSTED' THEN 'ACTIVE' ELSE "status" END,
    "updatedAt" = strftime('%Y-%m-%d %H:%M:%f', 'now');
