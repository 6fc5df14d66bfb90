-- A type change: integer → bigint.
ALTER TABLE products ALTER COLUMN price_cents TYPE bigint;
