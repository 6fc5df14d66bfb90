-- A new enum and a new table related to an existing one.
CREATE TYPE address_kind AS ENUM ('shipping', 'billing');

CREATE TABLE addresses (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind address_kind NOT NULL DEFAULT 'shipping',
    line1 text NOT NULL,
    city text NOT NULL,
    country char(2) NOT NULL
);

CREATE UNIQUE INDEX addresses_user_kind_key ON addresses (user_id, kind);
