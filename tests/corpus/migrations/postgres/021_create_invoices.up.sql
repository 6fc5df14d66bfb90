-- An identity column, a standalone sequence and a one-to-one relation.
CREATE SEQUENCE invoice_number_seq START WITH 1000;

CREATE TABLE invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number bigint NOT NULL DEFAULT nextval('invoice_number_seq'),
    order_id bigint NOT NULL UNIQUE REFERENCES orders (id),
    issued_at timestamptz NOT NULL DEFAULT now()
);
