-- Live shop: an active customer places an order with two lines.
\set k random(1, :n_active)
\set p random(1, :n_products)
BEGIN;
WITH o AS (
    INSERT INTO shop."order" (customer_id, placed_at, status, email, full_name, phone, shipping_address_id, total)
    SELECT c.id, now(), 'placed', c.email, c.full_name, c.phone, c.address_id, 0
      FROM bench.active a JOIN shop.customer c ON c.id = a.id WHERE a.i = :k
    RETURNING id)
INSERT INTO shop.order_line (order_id, line_no, product_id, qty, unit_price)
SELECT o.id, l, :p, 1, 9.90 FROM o, generate_series(1, 2) l;
COMMIT;
