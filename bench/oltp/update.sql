-- Live shop: an active customer logs in.
\set k random(1, :n_active)
UPDATE shop.customer SET last_seen_at = now() WHERE id = (SELECT id FROM bench.active WHERE i = :k);
