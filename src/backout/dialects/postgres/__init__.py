"""PostgreSQL: psycopg sessions, pglast parsing, pg_dump/pg_restore."""
