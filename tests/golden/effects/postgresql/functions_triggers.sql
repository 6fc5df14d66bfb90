-- Functions, procedures and triggers. A body runs when called, not when created: calling a
-- function the script defines analyses its body there; calling an unknown one needs review.
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW."updatedAt" := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER voucher_touch BEFORE UPDATE ON "Voucher"
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE FUNCTION purge_expired(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM "Voucher" WHERE "expiresAt" < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE PROCEDURE reset_usage() LANGUAGE sql AS $$
    UPDATE "Voucher" SET "currentUses" = 0;
$$;

CREATE FUNCTION clear_cache() RETURNS void LANGUAGE sql
BEGIN ATOMIC
    DELETE FROM "VoucherCache";
END;

SELECT purge_expired(now() - interval '1 year');
CALL reset_usage();
SELECT clear_cache();
SELECT audit.archive_everything();
CALL maintenance.rebuild();

DROP TRIGGER voucher_touch ON "Voucher";
DROP TRIGGER IF EXISTS other_touch ON public."VoucherRedemption" CASCADE;
DROP FUNCTION touch_updated_at();
DROP FUNCTION IF EXISTS purge_expired(timestamptz), clear_cache;
DROP PROCEDURE reset_usage();
