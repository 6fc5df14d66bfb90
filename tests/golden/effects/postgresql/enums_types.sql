-- Enums and other types.
CREATE TYPE "VoucherType" AS ENUM ('TOKENS', 'PERCENT_DISCOUNT', 'FREE_TRIAL');
ALTER TYPE "VoucherType" ADD VALUE 'GIFT';
ALTER TYPE "VoucherType" ADD VALUE IF NOT EXISTS 'BONUS' BEFORE 'FREE_TRIAL';
ALTER TYPE "VoucherType" ADD VALUE 'REFERRAL' AFTER 'TOKENS';
ALTER TYPE "VoucherType" RENAME VALUE 'FREE_TRIAL' TO 'TRIAL';
CREATE TYPE money_amount AS (amount numeric(12, 2), currency char(3));
CREATE DOMAIN voucher_code AS text CHECK (VALUE ~ '^[A-Z0-9]{6,}$');
CREATE TYPE float_range AS RANGE (subtype = float8);
ALTER TYPE money_amount ADD ATTRIBUTE note text;
ALTER TYPE money_amount DROP ATTRIBUTE note;
DROP TYPE "VoucherType";
DROP TYPE IF EXISTS "VoucherStatus", money_amount CASCADE;
DROP DOMAIN voucher_code;
