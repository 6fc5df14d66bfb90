-- A partial rollback with a bound parameter (:since is backout's syntax, not PostgreSQL's).
-- backout:param since timestamptz
UPDATE "UserTokenBalance" AS b
SET "balance" = b."balance" - r.total
FROM (
    SELECT "userId", sum("amount") AS total
    FROM "TokenTransaction"
    WHERE "source" = 'voucher_redemption' AND "createdAt" > :since
    GROUP BY "userId"
) AS r
WHERE b."userId" = r."userId";

DELETE FROM "TokenTransaction"
WHERE "source" = 'voucher_redemption' AND "createdAt" > CAST(:since AS timestamptz);
