CREATE TABLE products (
    id serial PRIMARY KEY,
    sku varchar(64) NOT NULL CONSTRAINT products_sku_key UNIQUE,
    title text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    created_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
