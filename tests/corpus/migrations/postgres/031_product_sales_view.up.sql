-- A materialized view with a unique index (for REFRESH ... CONCURRENTLY).
CREATE MATERIALIZED VIEW product_sales AS
SELECT l.product_id, sum(l.quantity) AS quantity, sum(l.quantity * l.unit_price_cents) AS cents
FROM order_lines l
GROUP BY l.product_id;

CREATE UNIQUE INDEX product_sales_product_id_key ON product_sales (product_id);
