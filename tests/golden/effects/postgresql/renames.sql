-- Renames of every kind, and SET SCHEMA.
ALTER TABLE "registry_purchases" RENAME COLUMN "registryItemId" TO "itemId";
ALTER TABLE "registry_purchases" RENAME TO "purchases";
ALTER TABLE "purchases" RENAME CONSTRAINT "registry_purchases_pkey" TO "purchases_pkey";
ALTER INDEX "registry_purchases_orderId_idx" RENAME TO "purchases_orderId_idx";
ALTER TYPE "ContributionStatus" RENAME TO "PaymentStatus";
ALTER TYPE "PaymentStatus" RENAME VALUE 'PAID' TO 'SETTLED';
ALTER SCHEMA legacy RENAME TO archive;
ALTER VIEW active_registries RENAME TO live_registries;
ALTER SEQUENCE purchases_seq RENAME TO purchase_numbers;
ALTER TRIGGER touch_updated_at ON "purchases" RENAME TO purchases_touch;
ALTER FUNCTION touch() RENAME TO touch_row;
ALTER TABLE "purchases" SET SCHEMA archive;
ALTER TYPE "PaymentStatus" SET SCHEMA archive;
ALTER TABLE IF EXISTS gone RENAME TO still_gone;
