ALTER TABLE users
    ADD COLUMN phone text,
    ADD COLUMN marketing_opt_in boolean NOT NULL DEFAULT false;
