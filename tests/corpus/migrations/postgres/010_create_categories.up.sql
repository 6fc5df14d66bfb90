-- A self-referencing table, and a new relation from an existing table.
CREATE TABLE categories (
    id serial PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    parent_id integer REFERENCES categories (id) ON DELETE SET NULL
);

ALTER TABLE products ADD COLUMN category_id integer;

ALTER TABLE products ADD CONSTRAINT products_category_id_fkey
    FOREIGN KEY (category_id) REFERENCES categories (id) ON DELETE SET NULL ON UPDATE CASCADE;

CREATE INDEX products_category_id_idx ON products (category_id);
