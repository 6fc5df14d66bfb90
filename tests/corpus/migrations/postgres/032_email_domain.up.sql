-- A domain type replaces a plain text column type.
CREATE DOMAIN email_address AS text CHECK (VALUE ~ '^[^@]+@[^@]+$');

ALTER TABLE users ALTER COLUMN email TYPE email_address;
