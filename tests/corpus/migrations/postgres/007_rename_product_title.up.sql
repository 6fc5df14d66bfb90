-- A column rename: the rollback must rename it back, not drop and re-add it.
ALTER TABLE products RENAME COLUMN title TO name;
