-- A text column becomes an enum.
CREATE TYPE product_state AS ENUM ('draft', 'active', 'archived');

ALTER TABLE products ALTER COLUMN state DROP DEFAULT;

ALTER TABLE products ALTER COLUMN state TYPE product_state USING state::product_state;

ALTER TABLE products ALTER COLUMN state SET DEFAULT 'draft';
