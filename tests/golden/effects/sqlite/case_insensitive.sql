-- SQLite compares names case-insensitively, quoted or not; spelling is kept for display.
-- "main" is the default schema.
DELETE FROM Voucher WHERE id = 1;
DELETE FROM "voucher" WHERE id = 2;
DELETE FROM main.VOUCHER WHERE id = 3;
DROP TABLE "Voucher";
CREATE TABLE Ledger (id INTEGER PRIMARY KEY);
INSERT INTO LEDGER (id) VALUES (1);
ALTER TABLE "ledger" ADD COLUMN Note TEXT;
