-- A jsonb column with a GIN index.
ALTER TABLE orders ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb;

CREATE INDEX orders_metadata_idx ON orders USING gin (metadata);
