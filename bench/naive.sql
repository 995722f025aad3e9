-- The naive way (bench/run.sh baseline 2): prints a psql script that purges the first
-- :limit expiring customers the way many applications do it: the ids fetched first, then one
-- transaction per subject with one DELETE/UPDATE per table (one round trip each), the same
-- semantics as bench/limit.sql, and one audit row per subject.
--
--   psql "$DB" -qAtX -v as_of=... -v salt=... -v limit=20000 -f bench/naive.sql >script.sql
--   psql "$DB" -qX -v ON_ERROR_STOP=1 -f script.sql
\set QUIET on
\set ON_ERROR_STOP on
SELECT format($f$BEGIN;
SELECT 1 FROM shop.customer WHERE id = %1$s FOR UPDATE;
DELETE FROM shop.wishlist_item WHERE customer_id = %1$s;
DELETE FROM shop.cart_item WHERE cart_id IN (SELECT id FROM shop.cart WHERE customer_id = %1$s);
DELETE FROM shop.cart WHERE customer_id = %1$s;
DELETE FROM shop.newsletter_consent WHERE customer_id = %1$s;
DELETE FROM shop.newsletter_log WHERE customer_ref = %1$s;
UPDATE shop.address ad SET street = '[redacted]', phone = NULL
 WHERE ad.id IN (SELECT address_id FROM shop.customer WHERE id = %1$s
                 UNION SELECT shipping_address_id FROM shop."order" WHERE customer_id = %1$s)
   AND NOT EXISTS (SELECT FROM shop.store st WHERE st.address_id = ad.id)
   AND NOT EXISTS (SELECT FROM shop.customer k WHERE k.address_id = ad.id AND k.id <> %1$s)
   AND NOT EXISTS (SELECT FROM shop."order" o WHERE o.shipping_address_id = ad.id
                   AND o.customer_id IS DISTINCT FROM %1$s);
UPDATE shop."order" o
   SET email = 'anon-' || left(encode(sha256(convert_to(%2$L || 'shop."order".email:' || o.id, 'UTF8')), 'hex'), 19) || '@example.invalid',
       full_name = '[redacted]', phone = NULL, birth_date = date_trunc('year', o.birth_date)::date,
       customer_id = NULL
 WHERE o.customer_id = %1$s;
DELETE FROM shop.customer WHERE id = %1$s;
INSERT INTO bench.audit_subject (subject_digest, counts)
VALUES (encode(sha256(convert_to(%2$L || 'shop.customer:' || %1$s, 'UTF8')), 'hex'), '[]');
COMMIT;$f$, id, :'salt')
FROM shop.customer
WHERE last_seen_at < :'as_of'::timestamptz - interval '1 year' AND NOT legal_hold
ORDER BY id
LIMIT :limit;
