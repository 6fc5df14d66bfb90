-- Schemas and extensions.
CREATE SCHEMA IF NOT EXISTS archive;
CREATE SCHEMA reporting
    CREATE TABLE daily_totals (day date PRIMARY KEY, total bigint)
    CREATE VIEW recent AS SELECT * FROM daily_totals WHERE day > now() - interval '7 days';
CREATE EXTENSION IF NOT EXISTS "pgcrypto";
CREATE EXTENSION citext;
ALTER EXTENSION citext UPDATE;
DROP EXTENSION citext;
DROP EXTENSION IF EXISTS pg_trgm CASCADE;
DROP SCHEMA archive;
DROP SCHEMA IF EXISTS reporting CASCADE;
