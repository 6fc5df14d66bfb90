-- Rollback for 20250720000000_encrypt_access_tokens
-- Removes encryption fields from the sessions table.
--
-- backout:risk MEDIUM
-- backout:impact Removes the encrypted token fields "accessTokenEncrypted", "accessTokenIv", \
--   "accessTokenTag" and "encryptionKeyVersion" from sessions and makes "accessToken" required again
-- backout:impact Drops the security_audit table and the SecurityEventType enum
-- backout:impact Reverts the default data retention of new registries from 90 back to 365 days \
--   (registries created since keep the 90 days they were given)
-- backout:data-loss Encrypted tokens will be lost: sessions that hold only an encrypted token (no \
--   plaintext "accessToken") are deleted, and those shops must open the app to re-authenticate
-- backout:data-loss The security audit trail (every security_audit row)
-- backout:manual Revert prisma/schema.prisma to the 20250101000000_init state: remove model \
--   SecurityAudit and enum SecurityEventType, the four encrypted token fields of Session, make \
--   `accessToken String` required, set `dataRetentionDays Int @default(365)`
-- backout:manual Run `npx prisma generate`, then deploy an app version that stores plaintext tokens
-- backout:manual Export security_audit from the backup if compliance requires the audit trail
-- backout:verify SELECT NOT EXISTS (SELECT 1 FROM sessions WHERE "accessToken" IS NULL)
-- backout:verify SELECT column_default = '365' FROM information_schema.columns \
--   WHERE table_schema = current_schema() AND table_name = 'registries' \
--   AND column_name = 'dataRetentionDays'

-- 1. Sessions created after the migration hold only the encrypted token; without a plaintext
--    token they cannot satisfy NOT NULL. The shop re-authenticates on its next visit.
DELETE FROM "sessions" WHERE "accessToken" IS NULL;

-- 2. Remove the encrypted token fields.
ALTER TABLE "sessions" DROP COLUMN "accessTokenEncrypted",
DROP COLUMN "accessTokenIv",
DROP COLUMN "accessTokenTag",
DROP COLUMN "encryptionKeyVersion",
ALTER COLUMN "accessToken" SET NOT NULL;

-- 3. Drop the audit table, then its enum.
DROP TABLE "security_audit";

DROP TYPE "SecurityEventType";

-- 4. Revert the data retention default.
ALTER TABLE "registries" ALTER COLUMN "dataRetentionDays" SET DEFAULT 365;
