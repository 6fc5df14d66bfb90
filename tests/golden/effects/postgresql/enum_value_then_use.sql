-- Adding an enum value and using it in the same transaction fails with 55P04: lint needs both
-- the added value and the statement that uses it.
ALTER TYPE "VoucherStatus" ADD VALUE 'SUSPENDED';
UPDATE "Voucher" SET "status" = 'SUSPENDED' WHERE "expiresAt" < now();
INSERT INTO "Voucher" ("id", "code", "value", "status", "updatedAt")
VALUES ('s1', 'PAUSED', 0, 'SUSPENDED', now());
