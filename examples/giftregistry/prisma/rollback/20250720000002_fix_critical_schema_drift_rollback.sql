-- Rollback for 20250720000002_fix_critical_schema_drift
-- Reverts the registryItemId relationship of registry_purchases back to registryId.
--
-- backout:risk HIGH
-- backout:impact Reverts the foreign key of registry_purchases from registry_items \
--   ("registryItemId") back to registries ("registryId"); each purchase is re-linked to the \
--   registry of the item it bought
-- backout:impact Drops tables group_gift_contributions, metafield_syncs, registry_addresses and \
--   registry_invitations, and enums AddressType, ContributionStatus, InvitationStatus, SyncStatus
-- backout:impact Removes "giftMessage", "isGroupGift", "registryItemId", "shopifyLineItemId" and \
--   "thankYouSentAt" from registry_purchases, and "refreshTokenEncrypted" and \
--   "refreshTokenExpires" from sessions
-- backout:data-loss Purchases linked to specific items are linked to their registries instead \
--   (re-applying the migration re-derives the item from ("registryId", "variantId"))
-- backout:data-loss Every group gift contribution, registry address, registry invitation and \
--   metafield sync record
-- backout:data-loss Gift messages, thank-you dates and Shopify line item ids of purchases, and the \
--   encrypted refresh tokens of sessions (shops on expiring offline tokens must re-authenticate)
-- backout:manual Revert prisma/schema.prisma to the 20250720000000_encrypt_access_tokens state: \
--   drop models GroupGiftContribution, MetafieldSync, RegistryAddress, RegistryInvitation and \
--   their enums, give RegistryPurchase back `registryId` + `registry`, remove the new fields
-- backout:manual Run `npx prisma generate`, then deploy the app version from before 2025-07-20
-- backout:manual Paid group gift contributions are gone from the database: reconcile them with \
--   the payment provider from the backup before deleting it
-- backout:require SELECT NOT EXISTS (SELECT 1 FROM group_gift_contributions \
--   WHERE status = 'PAID' AND "purchaseId" IS NULL)
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM registry_purchases p \
--   LEFT JOIN registries r ON r.id = p."registryId" WHERE r.id IS NULL)
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM registry_purchases p WHERE NOT EXISTS \
--   (SELECT 1 FROM registry_items i \
--   WHERE i."registryId" = p."registryId" AND i."variantId" = p."variantId"))

-- 1. Re-link every purchase to its registry, through the item it bought.
ALTER TABLE "registry_purchases" ADD COLUMN "registryId" TEXT;

UPDATE "registry_purchases" AS p
SET "registryId" = i."registryId"
FROM "registry_items" AS i
WHERE i."id" = p."registryItemId";

ALTER TABLE "registry_purchases" ALTER COLUMN "registryId" SET NOT NULL;

-- 2. Drop the four new tables, children first: group_gift_contributions references
--    registry_items and registry_purchases.
DROP TABLE "group_gift_contributions";
DROP TABLE "registry_invitations";
DROP TABLE "registry_addresses";
DROP TABLE "metafield_syncs";

-- 3. Remove the item link and the fields the migration added to registry_purchases.
ALTER TABLE "registry_purchases" DROP CONSTRAINT "registry_purchases_registryItemId_fkey";

DROP INDEX "registry_purchases_registryItemId_idx";

ALTER TABLE "registry_purchases" DROP COLUMN "giftMessage",
DROP COLUMN "isGroupGift",
DROP COLUMN "registryItemId",
DROP COLUMN "shopifyLineItemId",
DROP COLUMN "thankYouSentAt";

-- 4. Restore the index and foreign key exactly as 20250101000000_init created them.
CREATE INDEX "registry_purchases_registryId_idx" ON "registry_purchases"("registryId");

ALTER TABLE "registry_purchases" ADD CONSTRAINT "registry_purchases_registryId_fkey" FOREIGN KEY ("registryId") REFERENCES "registries"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- 5. Remove the fields the migration added to sessions.
ALTER TABLE "sessions" DROP COLUMN "refreshTokenEncrypted",
DROP COLUMN "refreshTokenExpires";

-- 6. Drop the enums, now that no column uses them.
DROP TYPE "AddressType";
DROP TYPE "ContributionStatus";
DROP TYPE "InvitationStatus";
DROP TYPE "SyncStatus";
