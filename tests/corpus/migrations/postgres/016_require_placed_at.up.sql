-- Backfill, then NOT NULL.
UPDATE orders SET placed_at = now() WHERE placed_at IS NULL;

ALTER TABLE orders ALTER COLUMN placed_at SET NOT NULL;
