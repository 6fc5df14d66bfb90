-- DELETE, UPDATE and INSERT in SQLite's forms.
DELETE FROM "VoucherRedemption";
DELETE FROM "VoucherRedemption" WHERE "voucherId" IN (SELECT "id" FROM "Voucher" WHERE "status" = 'EXPIRED');
DELETE FROM main."Voucher" WHERE rowid IN (SELECT rowid FROM "Voucher" ORDER BY "createdAt" LIMIT 10);
UPDATE "Voucher" SET "currentUses" = 0;
UPDATE OR IGNORE "Voucher" SET "code" = upper("code") WHERE "code" <> upper("code");
UPDATE "Voucher" SET ("currentUses", "status") = (0, 'ACTIVE') WHERE "status" = 'EXHAUSTED';
WITH used AS (SELECT "voucherId", count(*) AS n FROM "VoucherRedemption" GROUP BY 1)
UPDATE "Voucher" SET "currentUses" = (SELECT n FROM used WHERE used."voucherId" = "Voucher"."id")
WHERE "id" IN (SELECT "voucherId" FROM used);
INSERT INTO "Voucher" ("id", "code", "value", "updatedAt") VALUES ('v1', 'WELCOME', 10, CURRENT_TIMESTAMP);
INSERT OR IGNORE INTO "User" ("id", "email", "updatedAt") VALUES ('u1', 'a@b.c', CURRENT_TIMESTAMP);
REPLACE INTO "UserTokenBalance" ("id", "userId", "balance", "updatedAt") VALUES ('b1', 'u1', 0, CURRENT_TIMESTAMP);
INSERT INTO "UserTokenBalance" ("id", "userId", "balance", "updatedAt")
    SELECT 'b-' || "id", "id", 0, CURRENT_TIMESTAMP FROM "User"
    WHERE true
    ON CONFLICT ("userId") DO UPDATE SET "balance" = excluded."balance";
INSERT INTO archive DEFAULT VALUES;
