-- A foreign key's action changes.
ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;

ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT;
