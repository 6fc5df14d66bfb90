-- Triggers: sqlglot cannot parse CREATE TRIGGER; its head is read instead. The body runs
-- later, on each matching row change, so it is not an effect of this script.
CREATE TRIGGER voucher_touch AFTER UPDATE ON "Voucher"
FOR EACH ROW
BEGIN
    UPDATE "Voucher" SET "updatedAt" = CURRENT_TIMESTAMP WHERE "id" = NEW."id";
END;
CREATE TRIGGER IF NOT EXISTS redemption_guard BEFORE DELETE ON "VoucherRedemption"
BEGIN
    SELECT RAISE(ABORT, 'redemptions are permanent');
END;
CREATE TEMP TRIGGER main.usage_check BEFORE UPDATE OF "currentUses", "maxUses" ON main."Voucher"
WHEN NEW."currentUses" > NEW."maxUses"
BEGIN
    SELECT RAISE(FAIL, 'voucher exhausted');
END;
CREATE TRIGGER view_insert INSTEAD OF INSERT ON active_vouchers
BEGIN
    INSERT INTO "Voucher" ("id", "code") VALUES (NEW."id", NEW."code");
END;
CREATE TRIGGER "log delete" DELETE ON "Voucher" BEGIN DELETE FROM "VoucherRedemption" WHERE "voucherId" = OLD."id"; END;
DROP TRIGGER voucher_touch;
DROP TRIGGER IF EXISTS main.redemption_guard;
