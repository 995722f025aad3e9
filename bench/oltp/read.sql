-- Live shop: an active customer views their account and their recent orders.
\set k random(1, :n_active)
SELECT c.id, c.email, c.full_name, o.id, o.total
  FROM bench.active a JOIN shop.customer c ON c.id = a.id
  LEFT JOIN LATERAL (SELECT id, total FROM shop."order" WHERE customer_id = c.id ORDER BY placed_at DESC LIMIT 5) o ON true
 WHERE a.i = :k;
