-- The shop's newsletter service records that an active customer opened an issue: one insert into a
-- table that the consent guard of collect: with_consent may cover (bench/run.sh, the guard runs).
\set k random(1, :n_active)
INSERT INTO shop.newsletter_log (customer_ref, event, at)
SELECT a.id, 'opened', now() FROM bench.active AS a WHERE a.i = :k;
