-- An enum loses a value: PostgreSQL cannot drop one, so the type is rebuilt (and the view that
-- reads the column is dropped and re-created around it).
DROP VIEW paid_orders;

ALTER TYPE order_status RENAME TO order_status_old;

CREATE TYPE order_status AS ENUM ('pending', 'paid', 'fulfilled');

ALTER TABLE orders ALTER COLUMN status DROP DEFAULT;

ALTER TABLE orders ALTER COLUMN status TYPE order_status USING status::text::order_status;

ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'pending';

DROP TYPE order_status_old;

CREATE VIEW paid_orders AS
SELECT o.id, o.user_id, o.total_cents, o.placed_at
FROM orders o
WHERE o.status = 'paid';
