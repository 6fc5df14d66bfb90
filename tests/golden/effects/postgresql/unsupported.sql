-- Statements whose effect the analysis does not model: each one needs review.
CREATE POLICY voucher_owner ON "Voucher" USING ("ownerId" = current_user);
CREATE RULE protect AS ON DELETE TO "Voucher" DO INSTEAD NOTHING;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO readonly;
DROP OWNED BY old_role CASCADE;
PREPARE purge AS DELETE FROM "Voucher" WHERE "status" = $1;
EXECUTE purge('EXPIRED');
CREATE ROLE reporting NOLOGIN;
CREATE EVENT TRIGGER no_drops ON sql_drop EXECUTE FUNCTION forbid_drops();
DROP POLICY voucher_owner ON "Voucher";
