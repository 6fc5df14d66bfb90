-- Sequences, including the setval()/nextval() calls that migrations use to move them.
CREATE SEQUENCE IF NOT EXISTS invoice_numbers START 1000;
ALTER SEQUENCE invoice_numbers RESTART WITH 5000 INCREMENT BY 2;
ALTER SEQUENCE "TokenTransaction_id_seq" OWNED BY "TokenTransaction"."id";
SELECT setval('"TokenTransaction_id_seq"', (SELECT max("id") FROM "TokenTransaction"));
SELECT nextval('public.invoice_numbers'::regclass);
SELECT setval(pg_get_serial_sequence('"TokenTransaction"', 'id'), 1, false);
DROP SEQUENCE invoice_numbers;
DROP SEQUENCE IF EXISTS old_numbers CASCADE;
