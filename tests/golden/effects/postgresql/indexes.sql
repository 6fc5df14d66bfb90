-- Indexes: unique, concurrent, partial, expression, unnamed (PostgreSQL's default name).
CREATE INDEX "Voucher_status_expiresAt_idx" ON "Voucher"("status", "expiresAt");
CREATE UNIQUE INDEX "Voucher_code_key" ON "Voucher"("code");
CREATE INDEX CONCURRENTLY IF NOT EXISTS voucher_active_idx ON public."Voucher" ("expiresAt")
    WHERE "status" = 'ACTIVE';
CREATE INDEX ON "Voucher" (lower("code"));
CREATE INDEX ON "VoucherRedemption" ("voucherId", "userId");
DROP INDEX "Voucher_status_expiresAt_idx";
DROP INDEX CONCURRENTLY IF EXISTS public.voucher_active_idx;
DROP INDEX a_idx, b_idx CASCADE;
