-- TRUNCATE and DELETE.
TRUNCATE "VoucherRedemption";
TRUNCATE TABLE "VoucherRedemption", "Voucher" RESTART IDENTITY CASCADE;
DELETE FROM "VoucherRedemption";
DELETE FROM "VoucherRedemption" r USING "Voucher" v
    WHERE r."voucherId" = v."id" AND v."status" = 'EXPIRED';
DELETE FROM "TokenTransaction"
    WHERE "userId" IN (SELECT "id" FROM "User" WHERE "email" LIKE '%@test.invalid');
WITH doomed AS (SELECT "id" FROM "Voucher" WHERE "expiresAt" < now())
DELETE FROM "VoucherRedemption" WHERE "voucherId" IN (SELECT "id" FROM doomed)
RETURNING "id";
DELETE FROM ONLY archive."Voucher" AS v WHERE v."code" = 'X';
