-- gallra demo shop: print the distribution of the generated data, to verify it.
--   psql "$DB" -X -v ON_ERROR_STOP=1 -f config/demo/check.sql
-- Changes nothing (one transaction, rolled back). "inactive" means last_seen_at < now() - 1 year, as in the example policy
-- (customers with last_seen_at NULL, who never logged in, are counted separately).
-- Set -v as_of='...' to measure relative to the instant the data was generated for.

\set QUIET on
\set ON_ERROR_STOP on
\pset footer off
\if :{?as_of}
\else
    \set as_of now
\endif
BEGIN;   -- rolled back at the end: only a temporary helper is created
CREATE FUNCTION pg_temp.t_ref() RETURNS timestamptz LANGUAGE sql STABLE RETURN :'as_of'::timestamptz;

\echo
\echo '== Rows per table'
SELECT c.relname AS "table", to_char(n.rows, 'FM999,999,999') AS "rows",
       pg_size_pretty(pg_total_relation_size(c.oid)) AS "size with indexes"
  FROM pg_class c,
       LATERAL (SELECT (xpath('/row/n/text()',
                              query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, ''))
                       )[1]::text::bigint AS rows) AS n
 WHERE c.relnamespace = 'shop'::regnamespace AND c.relkind = 'r'
 ORDER BY c.relname;

\echo '== Customers'
SELECT count(*) AS customers,
       count(*) FILTER (WHERE last_seen_at < pg_temp.t_ref() - interval '1 year') AS "inactive > 1 year",
       round(100.0 * count(*) FILTER (WHERE last_seen_at < pg_temp.t_ref() - interval '1 year') / count(*), 1) AS "% inactive",
       count(*) FILTER (WHERE last_seen_at IS NULL) AS "never logged in",
       round(100.0 * count(*) FILTER (WHERE last_seen_at IS NULL) / count(*), 1) AS "% never",
       count(*) FILTER (WHERE last_seen_at IS NULL AND created_at < pg_temp.t_ref() - interval '1 year') AS "never, created > 1 year ago",
       count(*) FILTER (WHERE legal_hold) AS "legal hold",
       count(*) FILTER (WHERE legal_hold AND last_seen_at < pg_temp.t_ref() - interval '1 year') AS "legal hold & inactive"
  FROM shop.customer;

SELECT to_char(min(created_at), 'YYYY-MM-DD') AS "created from", to_char(max(created_at), 'YYYY-MM-DD') AS "created to",
       to_char(min(last_seen_at), 'YYYY-MM-DD') AS "last seen from", to_char(max(last_seen_at), 'YYYY-MM-DD') AS "last seen to",
       count(*) FILTER (WHERE phone IS NULL) AS "no phone", count(*) FILTER (WHERE birth_date IS NULL) AS "no birth date",
       min(birth_date) AS "born from", max(birth_date) AS "born to",
       max(id) AS "max id", max(id) - count(*) AS "id gaps"
  FROM shop.customer;

\echo '== Candidates of the example policy (inactive > 1 year, not on legal hold)'
WITH c AS (SELECT id, address_id FROM shop.customer
            WHERE last_seen_at < pg_temp.t_ref() - interval '1 year' AND NOT legal_hold)
SELECT count(*) AS subjects,
       count(*) FILTER (WHERE EXISTS (SELECT FROM shop."order" o WHERE o.customer_id = c.id)) AS "with orders (RESTRICT)",
       count(*) FILTER (WHERE EXISTS (SELECT FROM shop.wishlist_item w WHERE w.customer_id = c.id)) AS "with wishlist",
       count(*) FILTER (WHERE EXISTS (SELECT FROM shop.cart t WHERE t.customer_id = c.id)) AS "with cart",
       (SELECT count(*) FROM shop.newsletter_log l WHERE l.customer_ref IN (SELECT id FROM c)) AS "their newsletter_log rows",
       count(*) FILTER (WHERE EXISTS (SELECT FROM shop.customer o WHERE o.address_id = c.address_id AND o.id <> c.id
                                        AND (o.last_seen_at IS NULL OR o.last_seen_at >= pg_temp.t_ref() - interval '1 year' OR o.legal_hold))
                          OR EXISTS (SELECT FROM shop.store s WHERE s.address_id = c.address_id)) AS "address also used by a kept customer or a store",
       round(100.0 * count(*) / (SELECT count(*) FROM shop.customer), 1) AS "% of customers"
  FROM c;

\echo '== Addresses'
WITH use AS (
    SELECT a.id,
           (SELECT count(*) FROM shop.customer c WHERE c.address_id = a.id) AS customers,
           (SELECT count(*) FROM shop.store s WHERE s.address_id = a.id) AS stores,
           (SELECT count(*) FROM shop."order" o WHERE o.shipping_address_id = a.id) AS orders
      FROM shop.address a)
SELECT count(*) AS addresses,
       count(*) FILTER (WHERE customers = 1 AND stores = 0) AS "one customer",
       count(*) FILTER (WHERE customers > 1) AS "shared by customers",
       sum(customers) FILTER (WHERE customers > 1) AS "customers on shared",
       count(*) FILTER (WHERE stores > 0) AS "of a store",
       count(*) FILTER (WHERE stores > 0 AND customers > 0) AS "store & customer",
       sum(customers) FILTER (WHERE stores > 0) AS "customers on store addr",
       count(*) FILTER (WHERE customers = 0 AND stores = 0 AND orders > 0) AS "order-only (one-off)",
       count(*) FILTER (WHERE customers = 0 AND stores = 0 AND orders = 0) AS unused,
       (SELECT count(*) FROM shop.customer WHERE address_id IS NULL) AS "customers without"
  FROM use;

\echo '== Orders'
SELECT n AS "orders per customer", count(*) AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS "%"
  FROM (SELECT c.id, count(o.id) AS n
          FROM shop.customer c LEFT JOIN shop."order" o ON o.customer_id = c.id
         GROUP BY c.id) AS x
 GROUP BY n ORDER BY n;

SELECT (SELECT round(count(*)::numeric / (SELECT count(*) FROM shop.customer), 2) FROM shop."order") AS "orders / customer",
       (SELECT round(count(*)::numeric / nullif((SELECT count(*) FROM shop."order"), 0), 2) FROM shop.order_line) AS "lines / order",
       (SELECT count(*) FROM shop."order" o JOIN shop.customer c ON c.id = o.customer_id
         WHERE o.placed_at < c.created_at OR o.placed_at > c.last_seen_at) AS "placed outside created..last_seen",
       (SELECT count(*) FROM shop."order" WHERE birth_date IS NOT NULL) AS "with birth_date",
       (SELECT count(*) FROM shop."order" o JOIN shop.customer c ON c.id = o.customer_id
         WHERE o.shipping_address_id IS DISTINCT FROM c.address_id) AS "shipped elsewhere",
       (SELECT count(*) FROM shop."order" o
         WHERE o.total <> (SELECT sum(l.qty * l.unit_price) FROM shop.order_line l WHERE l.order_id = o.id)) AS "total <> sum(lines)";

SELECT status, count(*) AS orders FROM shop."order" GROUP BY status ORDER BY count(*) DESC;

\echo '== Wishlists, carts'
SELECT (SELECT round(count(*)::numeric / (SELECT count(*) FROM shop.customer), 2) FROM shop.wishlist_item) AS "wishlist items / customer",
       (SELECT count(DISTINCT customer_id) FROM shop.wishlist_item) AS "customers with a wishlist",
       (SELECT count(*) FROM shop.cart) AS carts,
       (SELECT round(100.0 * count(*) / (SELECT count(*) FROM shop.customer), 1) FROM shop.cart) AS "% customers with a cart",
       (SELECT round(count(*)::numeric / nullif((SELECT count(*) FROM shop.cart), 0), 2) FROM shop.cart_item) AS "items / cart",
       (SELECT min(n) || '..' || max(n) FROM (SELECT count(*) AS n FROM shop.cart_item GROUP BY cart_id) x) AS "items range";

\echo '== Newsletter'
SELECT count(DISTINCT customer_ref) FILTER (WHERE c.id IS NOT NULL) AS "customers with events",
       round(100.0 * count(DISTINCT customer_ref) FILTER (WHERE c.id IS NOT NULL) / (SELECT count(*) FROM shop.customer), 1) AS "% customers",
       round(count(*) FILTER (WHERE c.id IS NOT NULL)::numeric
             / nullif(count(DISTINCT customer_ref) FILTER (WHERE c.id IS NOT NULL), 0), 2) AS "events / such customer",
       count(*) FILTER (WHERE c.id IS NULL) AS "orphan rows",
       count(DISTINCT customer_ref) FILTER (WHERE c.id IS NULL) AS "orphan refs",
       count(*) FILTER (WHERE event = 'subscribed') AS subscribed,
       count(*) FILTER (WHERE event = 'opened') AS opened,
       count(*) FILTER (WHERE event = 'unsubscribed') AS unsubscribed
  FROM shop.newsletter_log l LEFT JOIN shop.customer c ON c.id = l.customer_ref;

SELECT count(*) AS consents,
       round(100.0 * count(*) / (SELECT count(*) FROM shop.customer), 1) AS "% customers",
       count(*) FILTER (WHERE revoked_at IS NOT NULL) AS revoked,
       round(100.0 * count(*) FILTER (WHERE revoked_at IS NOT NULL) / nullif(count(*), 0), 1) AS "% revoked",
       count(*) FILTER (WHERE revoked_at >= pg_temp.t_ref() - interval '30 days') AS "revoked < 30 days ago",
       count(*) FILTER (WHERE revoked_at < pg_temp.t_ref() - interval '30 days') AS "revoked > 30 days ago",
       count(*) FILTER (WHERE revoked_at < pg_temp.t_ref() - interval '1 year') AS "revoked > 1 year ago"
  FROM shop.newsletter_consent;

\echo '== Employees'
SELECT count(*) AS employees,
       count(*) FILTER (WHERE employment_ended_on IS NOT NULL) AS "left",
       round(100.0 * count(*) FILTER (WHERE employment_ended_on IS NOT NULL) / count(*), 1) AS "% left",
       count(*) FILTER (WHERE employment_ended_on < pg_temp.t_ref() - interval '2 years') AS "left > 2 years ago",
       min(employment_ended_on) AS "left from", max(employment_ended_on) AS "left to",
       min(hired_on) AS "hired from", count(*) FILTER (WHERE store_id IS NULL) AS "head office"
  FROM shop.employee;

\echo '== Foreign keys (and the one link without)'
SELECT conrelid::regclass AS "table", a.attname AS "column", confrelid::regclass AS "references",
       CASE confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE'
                        WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END AS "on delete",
       conname AS "constraint",
       EXISTS (SELECT FROM pg_index i WHERE i.indrelid = k.conrelid AND i.indkey[0] = k.conkey[1]) AS indexed
  FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
 WHERE k.connamespace = 'shop'::regnamespace AND k.contype = 'f'
UNION ALL
SELECT 'shop.newsletter_log'::regclass, 'customer_ref', 'shop.customer'::regclass, '(no foreign key)', NULL,
       EXISTS (SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                WHERE i.indrelid = 'shop.newsletter_log'::regclass AND a.attname = 'customer_ref')
 ORDER BY 1, 2;

ROLLBACK;
