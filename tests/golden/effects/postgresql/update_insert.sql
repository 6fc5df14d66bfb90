-- UPDATE, INSERT, MERGE, COPY and data-modifying CTEs.
UPDATE "Voucher" SET "currentUses" = 0;
UPDATE "Voucher" SET ("currentUses", "status") = (0, 'ACTIVE') WHERE "status" = 'EXHAUSTED';
UPDATE "UserTokenBalance" AS b
SET "balance" = b."balance" - r.total, "updatedAt" = now()
FROM (SELECT "userId", sum("amount") AS total FROM "TokenTransaction" GROUP BY "userId") AS r
WHERE b."userId" = r."userId";
INSERT INTO "Voucher" ("id", "code", "value", "updatedAt") VALUES ('v1', 'WELCOME', 10, now());
INSERT INTO archive."Voucher" SELECT * FROM "Voucher" WHERE "status" = 'EXPIRED';
INSERT INTO "UserTokenBalance" ("id", "userId", "balance", "updatedAt")
    VALUES ('b1', 'u1', 0, now())
    ON CONFLICT ("userId") DO UPDATE SET "balance" = EXCLUDED."balance";
INSERT INTO "UserTokenBalance" ("id", "userId", "updatedAt") VALUES ('b2', 'u2', now())
    ON CONFLICT DO NOTHING;
WITH moved AS (
    DELETE FROM "Voucher" WHERE "status" = 'EXPIRED' RETURNING *
)
INSERT INTO archive."Voucher" SELECT * FROM moved;
MERGE INTO "UserTokenBalance" b
USING (SELECT "userId", sum("amount") AS total FROM "TokenTransaction" GROUP BY 1) t
ON b."userId" = t."userId"
WHEN MATCHED AND t.total = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET "balance" = t.total
WHEN NOT MATCHED THEN INSERT ("id", "userId", "balance", "updatedAt")
    VALUES (gen_random_uuid()::text, t."userId", t.total, now());
COPY "Voucher" ("id", "code") FROM STDIN;
COPY "Voucher" TO STDOUT;
