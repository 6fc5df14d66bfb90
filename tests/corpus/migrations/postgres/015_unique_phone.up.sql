-- A partial unique index.
CREATE UNIQUE INDEX users_phone_key ON users (phone) WHERE phone IS NOT NULL;
