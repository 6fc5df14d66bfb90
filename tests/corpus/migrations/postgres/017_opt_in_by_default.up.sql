-- A changed default.
ALTER TABLE users ALTER COLUMN marketing_opt_in SET DEFAULT true;
