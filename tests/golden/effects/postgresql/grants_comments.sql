-- Privileges and comments: no rows or columns change.
GRANT SELECT, INSERT, UPDATE ON "Voucher", "VoucherRedemption" TO app_rw;
REVOKE DELETE ON TABLE "Voucher" FROM app_rw;
GRANT USAGE ON SCHEMA archive TO reporting;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO readonly;
GRANT USAGE, SELECT ON SEQUENCE "TokenTransaction_id_seq" TO app_rw;
GRANT EXECUTE ON FUNCTION purge_expired(timestamptz) TO app_rw;
GRANT app_rw TO alice;
COMMENT ON TABLE "Voucher" IS 'Voucher codes and their configuration';
COMMENT ON COLUMN "Voucher"."currentUses" IS 'How many times the code was redeemed';
COMMENT ON TYPE "VoucherType" IS NULL;
COMMENT ON CONSTRAINT "Voucher_pkey" ON "Voucher" IS 'primary key';
