-- Two new related tables, one referencing the other and an existing table.
CREATE TABLE coupons (
    code varchar(32) PRIMARY KEY,
    percent_off smallint NOT NULL CHECK (percent_off BETWEEN 1 AND 100),
    expires_at timestamptz
);

CREATE TABLE coupon_redemptions (
    id bigserial PRIMARY KEY,
    coupon_code varchar(32) NOT NULL REFERENCES coupons (code) ON UPDATE CASCADE,
    order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    redeemed_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (coupon_code, order_id)
);
