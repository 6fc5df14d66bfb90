-- What `prisma migrate dev` generates when a value is removed from an enum.
/*
  Warnings:

  - The values [FREE_TRIAL] on the enum `VoucherType` will be removed. If these variants are still used in the database, this will fail.

*/
-- AlterEnum
BEGIN;
CREATE TYPE "VoucherType_new" AS ENUM ('TOKENS', 'PERCENT_DISCOUNT');
ALTER TABLE "Voucher" ALTER COLUMN "type" DROP DEFAULT;
ALTER TABLE "Voucher" ALTER COLUMN "type" TYPE "VoucherType_new" USING ("type"::text::"VoucherType_new");
ALTER TYPE "VoucherType" RENAME TO "VoucherType_old";
ALTER TYPE "VoucherType_new" RENAME TO "VoucherType";
DROP TYPE "VoucherType_old";
ALTER TABLE "Voucher" ALTER COLUMN "type" SET DEFAULT 'TOKENS';
COMMIT;
