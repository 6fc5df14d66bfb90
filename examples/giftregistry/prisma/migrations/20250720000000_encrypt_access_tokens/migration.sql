-- CreateEnum
CREATE TYPE "SecurityEventType" AS ENUM ('TOKEN_ENCRYPTED', 'TOKEN_DECRYPT_FAILED', 'SESSION_CREATED', 'SESSION_REVOKED', 'KEY_ROTATED', 'DATA_PURGED');

-- AlterTable
ALTER TABLE "registries" ALTER COLUMN "dataRetentionDays" SET DEFAULT 90;

-- AlterTable
ALTER TABLE "sessions" ADD COLUMN     "accessTokenEncrypted" TEXT,
ADD COLUMN     "accessTokenIv" TEXT,
ADD COLUMN     "accessTokenTag" TEXT,
ADD COLUMN     "encryptionKeyVersion" INTEGER,
ALTER COLUMN "accessToken" DROP NOT NULL;

-- CreateTable
CREATE TABLE "security_audit" (
    "id" TEXT NOT NULL,
    "shop" TEXT NOT NULL,
    "sessionId" TEXT,
    "eventType" "SecurityEventType" NOT NULL,
    "details" JSONB,
    "ipAddress" TEXT,
    "userAgent" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "security_audit_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "security_audit_shop_createdAt_idx" ON "security_audit"("shop", "createdAt");

-- CreateIndex
CREATE INDEX "security_audit_eventType_idx" ON "security_audit"("eventType");
