/*
  Warnings:

  - You are about to drop the column `registryId` on the `registry_purchases` table. All the data in the column will be lost.
  - Added the required column `registryItemId` to the `registry_purchases` table without a default value. This is not possible if the table is not empty.

*/
-- Edited by hand after `prisma migrate dev --create-only`: "registryItemId" is added as
-- nullable, backfilled from registry_items by ("registryId", "variantId"), and only then made
-- required; "registryId" is dropped after the backfill instead of before it.

-- CreateEnum
CREATE TYPE "AddressType" AS ENUM ('SHIPPING', 'BILLING');

-- CreateEnum
CREATE TYPE "ContributionStatus" AS ENUM ('PENDING', 'PAID', 'REFUNDED', 'FAILED');

-- CreateEnum
CREATE TYPE "InvitationStatus" AS ENUM ('PENDING', 'ACCEPTED', 'DECLINED', 'EXPIRED');

-- CreateEnum
CREATE TYPE "SyncStatus" AS ENUM ('PENDING', 'SYNCED', 'FAILED');

-- AlterTable
ALTER TABLE "registry_purchases" ADD COLUMN     "giftMessage" TEXT,
ADD COLUMN     "isGroupGift" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "registryItemId" TEXT,
ADD COLUMN     "shopifyLineItemId" TEXT,
ADD COLUMN     "thankYouSentAt" TIMESTAMP(3);

-- Backfill (hand-written): link every purchase to the item it bought in its registry.
UPDATE "registry_purchases" AS p
SET "registryItemId" = i."id"
FROM "registry_items" AS i
WHERE i."registryId" = p."registryId"
  AND i."variantId" = p."variantId";

-- Fails, on purpose, if a purchase matches no item of its registry.
ALTER TABLE "registry_purchases" ALTER COLUMN "registryItemId" SET NOT NULL;

-- DropForeignKey
ALTER TABLE "registry_purchases" DROP CONSTRAINT "registry_purchases_registryId_fkey";

-- DropIndex
DROP INDEX "registry_purchases_registryId_idx";

-- AlterTable
ALTER TABLE "registry_purchases" DROP COLUMN "registryId";

-- AlterTable
ALTER TABLE "sessions" ADD COLUMN     "refreshTokenEncrypted" TEXT,
ADD COLUMN     "refreshTokenExpires" TIMESTAMP(3);

-- CreateTable
CREATE TABLE "group_gift_contributions" (
    "id" TEXT NOT NULL,
    "registryItemId" TEXT NOT NULL,
    "purchaseId" TEXT,
    "contributorName" TEXT NOT NULL,
    "contributorEmail" TEXT NOT NULL,
    "amount" DECIMAL(10,2) NOT NULL,
    "currency" TEXT NOT NULL DEFAULT 'USD',
    "message" TEXT,
    "status" "ContributionStatus" NOT NULL DEFAULT 'PENDING',
    "paymentReference" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "group_gift_contributions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "metafield_syncs" (
    "id" TEXT NOT NULL,
    "registryId" TEXT NOT NULL,
    "shop" TEXT NOT NULL,
    "ownerType" TEXT NOT NULL DEFAULT 'CUSTOMER',
    "ownerId" TEXT NOT NULL,
    "namespace" TEXT NOT NULL DEFAULT 'gift_registry',
    "key" TEXT NOT NULL,
    "metafieldId" TEXT,
    "status" "SyncStatus" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "lastError" TEXT,
    "payload" JSONB,
    "syncedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "metafield_syncs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "registry_addresses" (
    "id" TEXT NOT NULL,
    "registryId" TEXT NOT NULL,
    "type" "AddressType" NOT NULL DEFAULT 'SHIPPING',
    "firstName" TEXT,
    "lastName" TEXT,
    "company" TEXT,
    "address1" TEXT NOT NULL,
    "address2" TEXT,
    "city" TEXT NOT NULL,
    "province" TEXT,
    "zip" TEXT NOT NULL,
    "countryCode" TEXT NOT NULL,
    "phone" TEXT,
    "isDefault" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "registry_addresses_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "registry_invitations" (
    "id" TEXT NOT NULL,
    "registryId" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "token" TEXT NOT NULL,
    "status" "InvitationStatus" NOT NULL DEFAULT 'PENDING',
    "sentAt" TIMESTAMP(3),
    "respondedAt" TIMESTAMP(3),
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "registry_invitations_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "registry_purchases_registryItemId_idx" ON "registry_purchases"("registryItemId");

-- CreateIndex
CREATE INDEX "group_gift_contributions_registryItemId_idx" ON "group_gift_contributions"("registryItemId");

-- CreateIndex
CREATE INDEX "group_gift_contributions_purchaseId_idx" ON "group_gift_contributions"("purchaseId");

-- CreateIndex
CREATE INDEX "metafield_syncs_shop_status_idx" ON "metafield_syncs"("shop", "status");

-- CreateIndex
CREATE UNIQUE INDEX "metafield_syncs_registryId_namespace_key_key" ON "metafield_syncs"("registryId", "namespace", "key");

-- CreateIndex
CREATE INDEX "registry_addresses_registryId_idx" ON "registry_addresses"("registryId");

-- CreateIndex
CREATE UNIQUE INDEX "registry_invitations_token_key" ON "registry_invitations"("token");

-- CreateIndex
CREATE UNIQUE INDEX "registry_invitations_registryId_email_key" ON "registry_invitations"("registryId", "email");

-- AddForeignKey
ALTER TABLE "registry_purchases" ADD CONSTRAINT "registry_purchases_registryItemId_fkey" FOREIGN KEY ("registryItemId") REFERENCES "registry_items"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "group_gift_contributions" ADD CONSTRAINT "group_gift_contributions_registryItemId_fkey" FOREIGN KEY ("registryItemId") REFERENCES "registry_items"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "group_gift_contributions" ADD CONSTRAINT "group_gift_contributions_purchaseId_fkey" FOREIGN KEY ("purchaseId") REFERENCES "registry_purchases"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "metafield_syncs" ADD CONSTRAINT "metafield_syncs_registryId_fkey" FOREIGN KEY ("registryId") REFERENCES "registries"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "registry_addresses" ADD CONSTRAINT "registry_addresses_registryId_fkey" FOREIGN KEY ("registryId") REFERENCES "registries"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "registry_invitations" ADD CONSTRAINT "registry_invitations_registryId_fkey" FOREIGN KEY ("registryId") REFERENCES "registries"("id") ON DELETE CASCADE ON UPDATE CASCADE;
