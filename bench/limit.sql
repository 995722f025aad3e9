-- The limit: the whole purge of policy inactive-customers as ONE hand-written set-based
-- transaction, the fastest way PostgreSQL itself can do it (bench/run.sh baseline 1).
--
--   psql "$DB" -v ON_ERROR_STOP=1 -v as_of='2026-11-29 00:00:00+00' -v salt='...' -f bench/limit.sql
--
-- Same semantics as config/policies/inactive-customers.yaml: subjects are customers not seen
-- for a year (never seen: NULL, not expiring, as gallra reads the rule) and not under legal hold; their wishlist, cart and
-- cart items, newsletter consents and newsletter log are deleted; their orders are anonymized
-- (fake_email, redact, null, truncate(year)) and detached; the addresses they point to (their
-- own and their orders' shipping addresses) are anonymized unless a store, a customer who
-- stays or an order of one still uses them; the customer is deleted; one audit row per subject
-- (a keyed digest and its counts per table) goes to bench.audit_subject.
-- Prints one line: subjects|rows.
\set QUIET on
\set ON_ERROR_STOP on
BEGIN;
SET LOCAL work_mem = '64MB';

CREATE TEMP TABLE s ON COMMIT DROP AS
    SELECT id, address_id FROM shop.customer
    WHERE last_seen_at < :'as_of'::timestamptz - interval '1 year'
      AND NOT legal_hold
    FOR UPDATE;
ALTER TABLE s ADD PRIMARY KEY (id);
ANALYZE s;
CREATE TEMP TABLE c (subject bigint, tbl text, action text, n bigint) ON COMMIT DROP;

-- Addresses the subjects point to, identified before the customers and the order links go.
CREATE TEMP TABLE a ON COMMIT DROP AS
    SELECT DISTINCT ON (addr) addr, subject FROM (
        SELECT address_id AS addr, id AS subject FROM s WHERE address_id IS NOT NULL
        UNION ALL
        SELECT o.shipping_address_id, o.customer_id FROM shop."order" o JOIN s ON s.id = o.customer_id
        WHERE o.shipping_address_id IS NOT NULL) x
    ORDER BY addr, subject;
DELETE FROM a WHERE EXISTS (SELECT FROM shop.store st WHERE st.address_id = a.addr)
    OR EXISTS (SELECT FROM shop.customer k WHERE k.address_id = a.addr AND NOT EXISTS (SELECT FROM s WHERE s.id = k.id))
    OR EXISTS (SELECT FROM shop."order" o WHERE o.shipping_address_id = a.addr
               AND (o.customer_id IS NULL OR NOT EXISTS (SELECT FROM s WHERE s.id = o.customer_id)));

WITH d AS (DELETE FROM shop.wishlist_item w USING s WHERE w.customer_id = s.id RETURNING w.customer_id)
INSERT INTO c SELECT customer_id, 'shop.wishlist_item', 'deleted', count(*) FROM d GROUP BY 1;
WITH d AS (DELETE FROM shop.cart_item ci USING shop.cart ca, s
           WHERE ci.cart_id = ca.id AND ca.customer_id = s.id RETURNING ca.customer_id)
INSERT INTO c SELECT customer_id, 'shop.cart_item', 'deleted', count(*) FROM d GROUP BY 1;
WITH d AS (DELETE FROM shop.cart ca USING s WHERE ca.customer_id = s.id RETURNING ca.customer_id)
INSERT INTO c SELECT customer_id, 'shop.cart', 'deleted', count(*) FROM d GROUP BY 1;
WITH d AS (DELETE FROM shop.newsletter_consent nc USING s WHERE nc.customer_id = s.id RETURNING nc.customer_id)
INSERT INTO c SELECT customer_id, 'shop.newsletter_consent', 'deleted', count(*) FROM d GROUP BY 1;
WITH d AS (DELETE FROM shop.newsletter_log nl USING s WHERE nl.customer_ref = s.id RETURNING nl.customer_ref)
INSERT INTO c SELECT customer_ref, 'shop.newsletter_log', 'deleted', count(*) FROM d GROUP BY 1;
WITH d AS (
    UPDATE shop."order" o
       SET email = CASE WHEN o.email IS NULL THEN NULL ELSE
                   'anon-' || left(encode(sha256(convert_to(:'salt' || 'shop."order".email:' || o.id, 'UTF8')), 'hex'), 19)
                   || '@example.invalid' END,
           full_name = '[redacted]', phone = NULL,
           birth_date = date_trunc('year', o.birth_date)::date, customer_id = NULL
      FROM s WHERE o.customer_id = s.id
    RETURNING s.id AS subject)
INSERT INTO c SELECT subject, 'shop.order', 'anonymized', count(*) FROM d GROUP BY 1;
WITH d AS (DELETE FROM shop.customer k USING s WHERE k.id = s.id RETURNING k.id)
INSERT INTO c SELECT id, 'shop.customer', 'deleted', count(*) FROM d GROUP BY 1;
WITH d AS (UPDATE shop.address ad SET street = '[redacted]', phone = NULL FROM a
           WHERE ad.id = a.addr RETURNING a.subject)
INSERT INTO c SELECT subject, 'shop.address', 'anonymized', count(*) FROM d GROUP BY 1;

-- One audit row per subject: a keyed digest and what was done to it.
INSERT INTO bench.audit_subject (subject_digest, counts)
SELECT encode(sha256(convert_to(:'salt' || 'shop.customer:' || s.id, 'UTF8')), 'hex'), coalesce(g.counts, '[]')
FROM s LEFT JOIN (SELECT subject, jsonb_agg(jsonb_build_object('table', tbl, 'action', action, 'rows', n)) AS counts
                  FROM c GROUP BY subject) g ON g.subject = s.id;

SELECT (SELECT count(*) FROM s) AS subjects, (SELECT coalesce(sum(n), 0) FROM c) AS rows \gset
COMMIT;
\echo :subjects|:rows
