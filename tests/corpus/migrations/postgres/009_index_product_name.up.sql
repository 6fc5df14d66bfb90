-- An expression index.
CREATE INDEX products_name_lower_idx ON products (lower(name));
