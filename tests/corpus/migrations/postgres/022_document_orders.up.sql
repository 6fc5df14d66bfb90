COMMENT ON TABLE orders IS 'One checkout of one user';

COMMENT ON COLUMN orders.total_cents IS 'Total in cents, taxes included';
