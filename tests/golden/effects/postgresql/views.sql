-- Views and materialized views.
CREATE VIEW active_vouchers AS
    SELECT v.* FROM "Voucher" v WHERE v."status" = 'ACTIVE';
CREATE OR REPLACE VIEW redemption_counts AS
    WITH r AS (SELECT "voucherId", count(*) AS n FROM "VoucherRedemption" GROUP BY 1)
    SELECT v."code", r.n FROM "Voucher" v JOIN r ON r."voucherId" = v."id";
CREATE MATERIALIZED VIEW token_totals AS
    SELECT "userId", sum("amount") AS total FROM "TokenTransaction" GROUP BY "userId"
    WITH NO DATA;
REFRESH MATERIALIZED VIEW CONCURRENTLY token_totals;
DROP VIEW active_vouchers;
DROP VIEW IF EXISTS redemption_counts CASCADE;
DROP MATERIALIZED VIEW token_totals;
