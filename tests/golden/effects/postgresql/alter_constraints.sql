-- Constraints: named and unnamed (PostgreSQL's default names), foreign keys and their actions.
ALTER TABLE "VoucherRedemption" ADD CONSTRAINT "VoucherRedemption_voucherId_fkey"
    FOREIGN KEY ("voucherId") REFERENCES "Voucher"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "VoucherRedemption" ADD FOREIGN KEY ("userId") REFERENCES "User"("id") NOT VALID;
ALTER TABLE "VoucherRedemption" VALIDATE CONSTRAINT "VoucherRedemption_userId_fkey";
ALTER TABLE "VoucherRedemption" ADD CONSTRAINT positive_tokens CHECK ("tokensGranted" >= 0);
ALTER TABLE "VoucherRedemption" ADD CHECK ("tokensGranted" < 1000000);
ALTER TABLE "VoucherRedemption" ADD UNIQUE ("voucherId", "userId");
ALTER TABLE "VoucherRedemption" ADD PRIMARY KEY ("id");
ALTER TABLE "VoucherRedemption" ADD CONSTRAINT "VoucherRedemption_code_key" UNIQUE USING INDEX "VoucherRedemption_code_idx";
ALTER TABLE "VoucherRedemption" DROP CONSTRAINT "VoucherRedemption_voucherId_fkey";
ALTER TABLE "VoucherRedemption" DROP CONSTRAINT IF EXISTS positive_tokens;
ALTER TABLE "Voucher" DROP CONSTRAINT "Voucher_pkey" CASCADE;
ALTER TABLE "VoucherRedemption" ADD CONSTRAINT fk_owner FOREIGN KEY (owner_id)
    REFERENCES accounts.owners (id) ON DELETE SET DEFAULT;
ALTER TABLE "VoucherRedemption" ALTER CONSTRAINT fk_owner DEFERRABLE INITIALLY DEFERRED;
