-- Live shop: a customer the purge is about to erase logs in again (the collision with a purge).
\set k random(1, :n_expiring)
UPDATE shop.customer SET last_seen_at = now() WHERE id = (SELECT id FROM bench.expiring WHERE i = :k);
