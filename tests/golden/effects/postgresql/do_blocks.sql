-- DO blocks: static statements inside are analysed; dynamic SQL needs review.

-- Dynamic EXECUTE: the table name is only known at run time.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE tablename LIKE 'tmp_%' LOOP
        EXECUTE format('DROP TABLE %I', t);
    END LOOP;
END
$$;

-- The "create the enum unless it exists" idiom.
DO $$
BEGIN
    CREATE TYPE "VoucherKind" AS ENUM ('TOKENS', 'GIFT');
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$$;

-- Conditional DDL and DML, a PERFORM, a loop over a query, nested blocks.
DO $body$
DECLARE
    n integer;
    r record;
BEGIN
    SELECT count(*) INTO n FROM "Voucher" WHERE "status" = 'EXHAUSTED';
    IF n > 0 THEN
        UPDATE "Voucher" SET "status" = 'ACTIVE' WHERE "status" = 'EXHAUSTED';
    ELSE
        DELETE FROM "VoucherRedemption";
    END IF;
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_name = 'Voucher' AND column_name = 'note') THEN
        ALTER TABLE "Voucher" ADD COLUMN "note" TEXT;
    END IF;
    FOR r IN SELECT "id" FROM "Voucher" LOOP
        INSERT INTO "VoucherAudit" ("voucherId") VALUES (r."id");
    END LOOP;
    PERFORM pg_advisory_xact_lock(42);
    BEGIN
        TRUNCATE "VoucherCache";
    END;
END
$body$;

-- A dynamic loop (FOR ... IN EXECUTE) and RETURN-less EXECUTE of a constant string.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN EXECUTE 'SELECT id FROM "Voucher"' LOOP
        RAISE NOTICE '%', r.id;
    END LOOP;
    EXECUTE 'ALTER TYPE "VoucherType" ADD VALUE ''GIFT''';
END
$$;

-- Only plpgsql bodies are read.
DO LANGUAGE plperl $$ spi_exec_query('DELETE FROM "Voucher"'); $$;
