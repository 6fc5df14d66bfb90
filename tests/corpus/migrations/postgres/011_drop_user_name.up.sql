-- A dropped column (not the last one: its rollback re-adds it at the end of the table).
ALTER TABLE users DROP COLUMN name;
