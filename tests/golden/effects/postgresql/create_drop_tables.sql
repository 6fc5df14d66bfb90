-- CREATE TABLE and DROP TABLE in their forms.
CREATE TABLE "Voucher" (
    "id" TEXT NOT NULL,
    "code" TEXT NOT NULL,
    "ownerId" TEXT REFERENCES "User" ("id") ON DELETE SET NULL,
    CONSTRAINT "Voucher_pkey" PRIMARY KEY ("id")
);

CREATE TABLE IF NOT EXISTS audit.voucher_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    voucher_id text NOT NULL,
    CONSTRAINT voucher_log_voucher_fk FOREIGN KEY (voucher_id) REFERENCES "Voucher" (id)
        ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE order_items (
    order_id int,
    line int,
    FOREIGN KEY (order_id) REFERENCES orders
);

CREATE TEMPORARY TABLE scratch (LIKE "Voucher" INCLUDING ALL);

CREATE UNLOGGED TABLE measurements_2025 PARTITION OF measurements
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');

CREATE TABLE archived_vouchers AS SELECT * FROM "Voucher" WHERE "code" LIKE 'OLD%';

DROP TABLE "VoucherRedemption";
DROP TABLE IF EXISTS "Voucher", audit.voucher_log CASCADE;
DROP TABLE scratch RESTRICT;
