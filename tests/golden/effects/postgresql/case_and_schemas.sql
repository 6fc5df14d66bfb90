-- Case folding and schema qualification: unquoted names fold to lower case, quoted ones keep
-- their case, so Voucher, voucher and VOUCHER are one table and "Voucher" is another.
DELETE FROM Voucher WHERE id = 1;
DELETE FROM voucher WHERE id = 2;
DELETE FROM VOUCHER WHERE id = 3;
DELETE FROM "Voucher" WHERE id = 4;
DELETE FROM "VOUCHER" WHERE id = 5;
DROP TABLE Public.Voucher;
DROP TABLE "Public"."Voucher";
ALTER TABLE Billing."Invoice" ADD COLUMN Total NUMERIC, ADD COLUMN "Total" NUMERIC;
UPDATE "Billing"."Invoice" SET "Total" = Total WHERE "Total" IS NULL;
TRUNCATE mydb.billing.ledger;
