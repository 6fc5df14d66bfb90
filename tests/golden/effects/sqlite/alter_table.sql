-- What SQLite's ALTER TABLE can do.
ALTER TABLE "Voucher" ADD COLUMN "note" TEXT;
ALTER TABLE "Voucher" ADD "priority" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "VoucherRedemption" ADD COLUMN "orderId" TEXT REFERENCES "Order" ("id") ON DELETE SET NULL;
ALTER TABLE "Voucher" DROP COLUMN "description";
ALTER TABLE "Voucher" DROP "legacy";
ALTER TABLE "Voucher" RENAME COLUMN "value" TO "amount";
ALTER TABLE "Voucher" RENAME "note" TO "comment";
ALTER TABLE "Voucher" RENAME TO "Coupon";
ALTER TABLE main."Coupon" RENAME TO "Voucher";
