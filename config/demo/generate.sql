-- gallra demo shop: data generator (psql script).
--
--   psql "$DB" -v ON_ERROR_STOP=1 [-v customers=10000] [-v seed=0.42] [-v as_of='2025-06-01 03:00+00'] \
--        -f config/demo/generate.sql
--
-- Fills the tables created by config/demo/schema.sql (it empties them first, so it can be run
-- again). Everything is set-based (INSERT ... SELECT generate_series), in one transaction:
-- an error leaves the previous contents untouched.
--
-- Variables (all optional):
--   customers  number of customers (default 10000); every other table scales with it
--   seed       any number (default 0.42); the same seed, customers and as_of give the same rows
--   as_of      the reference instant all dates are relative to (default: now)
--
-- Determinism: instead of random() (whose sequence depends on the order rows are produced, and
-- on parallel workers), every "random" value is hashint8extended(key, seed + salt) scaled to
-- [0, 1), where key is the row's own id (customer id, order id, ...) and salt names the purpose.
-- The result depends only on (seed, customers, as_of), whatever plan PostgreSQL picks.
--
-- Speed: the foreign keys, primary keys, unique constraints and indexes of schema shop are
-- dropped before loading and recreated from their own definitions (pg_get_constraintdef /
-- pg_get_indexdef, with their comments) at the end: no row-by-row foreign-key check, and
-- indexes are built in bulk. Check and NOT NULL constraints stay and are checked per row.

\set QUIET on
\set ON_ERROR_STOP on

-- ---------------------------------------------------------------------------------------------
-- Parameters
\if :{?customers}
\else
    \set customers 10000
\endif
\if :{?seed}
\else
    \set seed 0.42
\endif
\if :{?as_of}
\else
    \set as_of now
\endif

SELECT coalesce(substring(:'customers' from '^[0-9]{1,9}$')::int BETWEEN 1 AND 100000000, false) AS customers_ok \gset
\if :customers_ok
\else
    \warn 'generate.sql: -v customers must be an integer between 1 and 100000000, not' :'customers'
    DO $$ BEGIN RAISE EXCEPTION 'generate.sql: invalid -v customers'; END $$;
\endif

SELECT clock_timestamp() AS started \gset

BEGIN;
-- Large sorts and index builds in memory; no parallel workers and no synchronized scans, so
-- that identity values (assigned in scan order) are reproducible.
SET LOCAL work_mem = '256MB';
SET LOCAL maintenance_work_mem = '512MB';
SET LOCAL max_parallel_workers_per_gather = 0;
SET LOCAL jit = off;   -- generate_series' row estimates make JIT look worthwhile; it costs seconds
SET LOCAL synchronize_seqscans = off;

SELECT :'as_of'::timestamptz AS t_ref,
       -- seed -> a bigint hash seed (any numeric is accepted)
       (:'seed'::numeric * 1000000007)::bigint AS seed_key,
       :customers AS n_customers,
       greatest(5, :customers / 2000) AS n_stores,          -- 5 per 10k customers, at least 5
       greatest(50, :customers / 50) AS n_employees,        -- 200 per 10k customers, at least 50
       200 AS n_products
\gset

\echo 'gallra demo shop:' :n_customers 'customers, seed' :seed ', as of' :t_ref

-- ---------------------------------------------------------------------------------------------
-- Helpers (temporary: they disappear with the session). SQL-standard bodies are inlined by the
-- planner, so they cost no function call per row -- as long as the body is no more volatile
-- than the declared volatility (check with EXPLAIN VERBOSE when changing one).

-- A uniform value in [0, 1) determined by (seed, key, salt).
CREATE FUNCTION pg_temp.rnd(k bigint, salt int) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (hashint8extended(k, :seed_key + salt * 1000003::bigint) & 4503599627370495)::float8
           / 4503599627370496.0;

-- An integer in [lo, hi].
CREATE FUNCTION pg_temp.rint(k bigint, salt int, lo bigint, hi bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN lo + floor(pg_temp.rnd(k, salt) * (hi - lo + 1))::bigint;

-- The reference instant ("now" of the demo).
CREATE FUNCTION pg_temp.t_ref() RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN :'t_ref'::timestamptz;

-- An instant a fraction f of the way from a to b. (STABLE like timestamptz + interval, so that
-- it is inlined.)
CREATE FUNCTION pg_temp.between(a timestamptz, b timestamptz, f float8) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN a + (b - a) * f;

CREATE FUNCTION pg_temp.first_name(k bigint, salt int) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (ARRAY['Anna','Erik','Maria','Lars','Karin','Anders','Eva','Johan','Sara','Per',
                  'Emma','Mikael','Elin','Nils','Ida','Oskar','Linnea','Ali','Fatima','Mohammed',
                  'Sofia','Jonas','Hanna','Ahmed','Maja','Lukas','Elsa','Noah','Alice','Hugo',
                  'Astrid','Leo','Olivia','Liam','Ingrid','Björn','Sven','Agnes','Amir','Julia']
           )[1 + floor(pg_temp.rnd(k, salt) * 40)::int];

CREATE FUNCTION pg_temp.last_name(k bigint, salt int) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (ARRAY['Andersson','Johansson','Karlsson','Nilsson','Eriksson','Larsson','Olsson',
                  'Persson','Svensson','Gustafsson','Pettersson','Jonsson','Jansson','Hansson',
                  'Bengtsson','Jönsson','Lindberg','Jakobsson','Magnusson','Lindström','Olofsson',
                  'Lindqvist','Lindgren','Berg','Axelsson','Bergström','Lundberg','Lind','Lundgren',
                  'Mattsson','Berglund','Fredriksson','Sandberg','Henriksson','Ali','Mohammed',
                  'Hussein','Nguyen','Virtanen','Kowalski']
           )[1 + floor(pg_temp.rnd(k, salt) * 40)::int];

-- ASCII local part of an e-mail address from a name.
CREATE FUNCTION pg_temp.mailbox(name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN translate(lower(replace(name, ' ', '.')), 'åäöéü', 'aaoeu');

-- A Swedish mobile number (fake), e.g. '+46 70 123 45 67'. (No format(): it is only STABLE,
-- and an IMMUTABLE function with a STABLE body is not inlined.)
CREATE FUNCTION pg_temp.phone(k bigint, salt int) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN '+46 7' || (ARRAY['0','2','3','6','9'])[1 + floor(pg_temp.rnd(k, salt) * 5)::int]
           || ' ' || lpad(pg_temp.rint(k, salt + 1, 0, 999)::text, 3, '0')
           || ' ' || lpad(pg_temp.rint(k, salt + 2, 0, 99)::text, 2, '0')
           || ' ' || lpad(pg_temp.rint(k, salt + 3, 0, 99)::text, 2, '0');

-- Order lines, as functions of the order id (used for the lines and for the order's total).
CREATE FUNCTION pg_temp.n_lines(order_id bigint) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN pg_temp.rint(order_id, 30, 1, 4)::int;
CREATE FUNCTION pg_temp.line_product(order_id bigint, line int) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN pg_temp.rint(order_id * 8 + line, 31, 1, :n_products);
CREATE FUNCTION pg_temp.line_qty(order_id bigint, line int) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 1 + floor(pg_temp.rnd(order_id * 8 + line, 32) ^ 3 * 4)::int;   -- mostly 1
CREATE FUNCTION pg_temp.product_price(product_id bigint) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN floor(29 + 1970 * pg_temp.rnd(product_id, 40) ^ 2)::int - 0.10;   -- 28.90 .. 1998.90 (no float -> numeric: slow)

-- Luhn check digit of a string of digits (Swedish personnummer: over YYMMDDNNN).
CREATE FUNCTION pg_temp.luhn(digits text) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (10 - (SELECT sum(CASE WHEN p % 2 = 1
                                  THEN (2 * substr(digits, p, 1)::int) / 10 + (2 * substr(digits, p, 1)::int) % 10
                                  ELSE substr(digits, p, 1)::int END)
                  FROM generate_series(1, length(digits)) AS p)::int % 10) % 10;

-- ---------------------------------------------------------------------------------------------
\echo '  dropping keys, foreign keys and indexes; emptying the tables'
CREATE TEMP TABLE saved_ddl ON COMMIT DROP AS
    -- 1: primary keys and unique constraints, 2: other indexes, 3: foreign keys, 4: comments
    SELECT 1 AS step, format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
                             pg_get_constraintdef(oid)) AS ddl
      FROM pg_constraint WHERE connamespace = 'shop'::regnamespace AND contype IN ('p', 'u')
    UNION ALL
    SELECT 2, pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE c.relnamespace = 'shop'::regnamespace
       AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
    UNION ALL
    SELECT 3, format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
      FROM pg_constraint WHERE connamespace = 'shop'::regnamespace AND contype = 'f'
    UNION ALL
    SELECT 4, format('COMMENT ON CONSTRAINT %I ON %s IS %L', conname, conrelid::regclass, obj_description(oid, 'pg_constraint'))
      FROM pg_constraint WHERE connamespace = 'shop'::regnamespace AND contype IN ('p', 'u', 'f')
       AND obj_description(oid, 'pg_constraint') IS NOT NULL
    UNION ALL
    SELECT 4, format('COMMENT ON INDEX %s IS %L', i.indexrelid::regclass, obj_description(i.indexrelid, 'pg_class'))
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE c.relnamespace = 'shop'::regnamespace
       AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
       AND obj_description(i.indexrelid, 'pg_class') IS NOT NULL;

-- Foreign keys first (they depend on the primary keys), then keys and unique constraints, then
-- the remaining indexes.
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname)
  FROM pg_constraint WHERE connamespace = 'shop'::regnamespace AND contype IN ('f', 'p', 'u')
 ORDER BY contype = 'f' DESC, conrelid, conname
\gexec
SELECT format('DROP INDEX %s', i.indexrelid::regclass)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE c.relnamespace = 'shop'::regnamespace
\gexec
SELECT 'TRUNCATE ' || string_agg(oid::regclass::text, ', ' ORDER BY oid) || ' RESTART IDENTITY'
  FROM pg_class WHERE relnamespace = 'shop'::regnamespace AND relkind IN ('r', 'p')
\gexec

-- ---------------------------------------------------------------------------------------------
\echo '  products, stores'
INSERT INTO shop.product (id, sku, name, price) OVERRIDING SYSTEM VALUE
SELECT p, format('SKU-%s', lpad(p::text, 6, '0')),
       (ARRAY['Wool','Linen','Oak','Steel','Cotton','Glass','Leather','Bamboo','Copper','Stone'])[1 + (p % 10)::int]
       || ' ' ||
       (ARRAY['scarf','lamp','chair','kettle','blanket','vase','bag','cutting board','mug','bowl',
              'jacket','candle holder','shelf','rug','teapot','notebook','tray','clock','mirror','basket'])[1 + (p / 10 % 20)::int],
       pg_temp.product_price(p)
  FROM generate_series(1, :n_products) AS p;

-- Address ids: 1 .. n_stores are the stores' addresses, then one per address-owning customer,
-- then one-off shipping addresses of orders (gifts, office deliveries).
INSERT INTO shop.store (id, name, address_id) OVERRIDING SYSTEM VALUE
SELECT s, format('Gallra Shop %s', lpad(s::text, 4, '0')), s
  FROM generate_series(1, :n_stores) AS s;

-- ---------------------------------------------------------------------------------------------
\echo '  customers'
-- Each customer gets a kind (r = rnd(id, 1)):
--   r < 0.02         never logged in: last_seen_at NULL (account from a newsletter sign-up)
--   0.02 <= r < 0.32 inactive: created 1-5 years ago, last seen before now - 1 year (30 %)
--   r >= 0.32        active: created in the last 5 years, last seen in the last year (68 %)
-- and an address kind (a = rnd(id, 5)):
--   a < 0.02         no address
--   0.02 <= a < 0.05 shares the address of another customer (a household; 3 %)
--   0.05 <= a < 0.052 uses the address of a store (0.2 %)
--   a >= 0.052       owns an address
-- Ids have gaps: every 101st id (101, 202, ...) belongs to a customer deleted long ago, whose
-- newsletter_log rows are still there (orphans).
CREATE TEMP TABLE cust ON COMMIT DROP AS
SELECT id, kind, addr_kind,
       CASE WHEN addr_kind = 'own'
            THEN count(*) FILTER (WHERE addr_kind = 'own') OVER (ORDER BY id) END AS owner_rank
  FROM (SELECT i + (i - 1) / 100 AS id
          FROM generate_series(1, :n_customers) AS i) AS g,
       LATERAL (SELECT CASE WHEN pg_temp.rnd(id, 1) < 0.02 THEN 'never'
                            WHEN pg_temp.rnd(id, 1) < 0.32 THEN 'inactive'
                            ELSE 'active' END AS kind,
                       CASE WHEN pg_temp.rnd(id, 5) < 0.02  THEN 'none'
                            WHEN pg_temp.rnd(id, 5) < 0.05  THEN 'customer'
                            WHEN pg_temp.rnd(id, 5) < 0.052 THEN 'store'
                            ELSE 'own' END AS addr_kind) AS k;

SELECT count(*) AS n_owners FROM cust WHERE addr_kind = 'own' \gset

INSERT INTO shop.customer (id, email, full_name, phone, birth_date, created_at, last_seen_at, legal_hold, address_id)
OVERRIDING SYSTEM VALUE
SELECT id,
       format('%s.%s@example.%s', pg_temp.mailbox(first_name || '.' || last_name), id,
              (ARRAY['com','com','net','org'])[pg_temp.rint(id, 9, 1, 4)]),
       first_name || ' ' || last_name,
       CASE WHEN pg_temp.rnd(id, 10) < 0.85 THEN pg_temp.phone(id, 11) END,
       CASE WHEN pg_temp.rnd(id, 15) < 0.92
            THEN date '1940-01-01' + pg_temp.rint(id, 16, 0, date '2006-12-31' - date '1940-01-01')::int END,
       created_at,
       CASE kind
            WHEN 'never' THEN NULL
            -- uniformly between creation and one year ago
            WHEN 'inactive' THEN pg_temp.between(created_at, pg_temp.t_ref() - interval '1 year', pg_temp.rnd(id, 3))
            -- in the last year (and after creation), more often recently
            ELSE pg_temp.between(pg_temp.t_ref(),
                                 greatest(created_at, pg_temp.t_ref() - interval '1 year'),
                                 pg_temp.rnd(id, 3) ^ 2)
       END,
       pg_temp.rnd(id, 4) < 0.01,
       CASE addr_kind
            WHEN 'own' THEN :n_stores + owner_rank
            WHEN 'customer' THEN :n_stores + pg_temp.rint(id, 6, 1, :n_owners)
            WHEN 'store' THEN pg_temp.rint(id, 6, 1, :n_stores)
       END
  FROM cust,
       LATERAL (SELECT pg_temp.first_name(id, 7) AS first_name,
                       pg_temp.last_name(id, 8) AS last_name,
                       CASE WHEN kind = 'inactive'
                            -- 1 to 5 years ago
                            THEN pg_temp.t_ref() - interval '1 year' - interval '4 years' * pg_temp.rnd(id, 2)
                            -- 0 to 5 years ago
                            ELSE pg_temp.t_ref() - interval '5 years' * pg_temp.rnd(id, 2)
                       END AS created_at) AS v
 ORDER BY id;

-- ---------------------------------------------------------------------------------------------
\echo '  orders'
-- 0-6 orders per customer who ever logged in (triangular, mean about 3), placed between
-- created_at and last_seen_at; ids in chronological order. 10 % ship to a one-off address (and
-- all orders of customers without an address): address ids after the owned addresses.
INSERT INTO shop."order" (id, customer_id, placed_at, status, email, full_name, phone, birth_date,
                          shipping_address_id, total)
OVERRIDING SYSTEM VALUE
SELECT id, customer_id, placed_at,
       CASE WHEN placed_at > pg_temp.t_ref() - interval '2 days' THEN
                 (ARRAY['placed','paid'])[pg_temp.rint(id, 23, 1, 2)]
            WHEN placed_at > pg_temp.t_ref() - interval '7 days' THEN 'shipped'
            WHEN pg_temp.rnd(id, 23) < 0.05 THEN 'cancelled'
            WHEN pg_temp.rnd(id, 23) < 0.08 THEN 'returned'
            ELSE 'delivered' END,
       email, full_name, phone,
       CASE WHEN pg_temp.rnd(id, 24) < 0.15 THEN birth_date END,   -- age-restricted goods only
       CASE WHEN one_off THEN :n_stores + :n_owners + one_off_rank ELSE address_id END,
       -- the sum of its lines (1 to 4 of them), unrolled: cheaper than a subquery per order
                  pg_temp.line_qty(id, 1) * pg_temp.product_price(pg_temp.line_product(id, 1))
       + CASE WHEN pg_temp.n_lines(id) >= 2
              THEN pg_temp.line_qty(id, 2) * pg_temp.product_price(pg_temp.line_product(id, 2)) ELSE 0 END
       + CASE WHEN pg_temp.n_lines(id) >= 3
              THEN pg_temp.line_qty(id, 3) * pg_temp.product_price(pg_temp.line_product(id, 3)) ELSE 0 END
       + CASE WHEN pg_temp.n_lines(id) >= 4
              THEN pg_temp.line_qty(id, 4) * pg_temp.product_price(pg_temp.line_product(id, 4)) ELSE 0 END
  FROM (SELECT row_number() OVER w AS id,
               count(*) FILTER (WHERE one_off) OVER w AS one_off_rank,
               o.*
          FROM (SELECT c.id AS customer_id, k,
                       pg_temp.between(c.created_at, c.last_seen_at, pg_temp.rnd(c.id * 8 + k, 21)) AS placed_at,
                       c.address_id IS NULL OR pg_temp.rnd(c.id * 8 + k, 22) < 0.1 AS one_off,
                       c.email, c.full_name, c.phone, c.birth_date, c.address_id
                  FROM shop.customer AS c,
                       generate_series(1, floor(3.5 * (pg_temp.rnd(c.id, 20) + pg_temp.rnd(c.id, 25)))::int) AS k
                 WHERE c.last_seen_at IS NOT NULL) AS o
        WINDOW w AS (ORDER BY placed_at, customer_id, k)) AS numbered;

\echo '  order lines'
-- Ids are given explicitly here and below (row_number) rather than drawn from the identity
-- sequence: nextval() per row costs more than the rest of the row. Here without a sort: the
-- orders were just written in id order, and a sequential scan (not parallel, not synchronized)
-- returns them in that order.
INSERT INTO shop.order_line (id, order_id, line_no, product_id, qty, unit_price) OVERRIDING SYSTEM VALUE
SELECT row_number() OVER (), o.id, l, pg_temp.line_product(o.id, l), pg_temp.line_qty(o.id, l),
       pg_temp.product_price(pg_temp.line_product(o.id, l))
  FROM shop."order" AS o, generate_series(1, pg_temp.n_lines(o.id)) AS l;

\echo '  addresses'
-- Store addresses, owned addresses, one-off shipping addresses: all in one id range.
SELECT coalesce(max(shipping_address_id), 0) AS max_ship FROM shop."order" \gset
INSERT INTO shop.address (id, street, postal_code, city, country, phone) OVERRIDING SYSTEM VALUE
SELECT a,
       format('%s %s', (ARRAY['Storgatan','Kungsgatan','Drottninggatan','Skolgatan','Kyrkogatan',
                              'Järnvägsgatan','Parkvägen','Björkvägen','Ringvägen','Strandvägen',
                              'Hamngatan','Nygatan','Östra Långgatan','Västra vägen','Trädgårdsgatan',
                              'Sveavägen','Linnégatan','Allégatan','Torggatan','Bruksvägen'])[pg_temp.rint(a, 50, 1, 20)],
              pg_temp.rint(a, 51, 1, 120))
           || CASE WHEN pg_temp.rnd(a, 52) < 0.3 THEN format(' lgh %s', pg_temp.rint(a, 53, 1001, 1605)) ELSE '' END,
       format('%s %s', pg_temp.rint(a, 54, 100, 984), lpad(pg_temp.rint(a, 55, 0, 99)::text, 2, '0')),
       city, country,
       CASE WHEN a > :n_stores AND pg_temp.rnd(a, 57) < 0.4 THEN pg_temp.phone(a, 58) END
  FROM generate_series(1, greatest(:n_stores + :n_owners, :max_ship)) AS a,
       LATERAL (SELECT CASE WHEN a <= :n_stores OR pg_temp.rnd(a, 59) < 0.95 THEN 'SE'
                            ELSE (ARRAY['NO','DK','FI','DE'])[pg_temp.rint(a, 60, 1, 4)] END AS country,
                       (ARRAY['Stockholm','Stockholm','Stockholm','Göteborg','Göteborg','Malmö','Uppsala',
                              'Västerås','Örebro','Linköping','Helsingborg','Jönköping','Norrköping','Lund',
                              'Umeå','Gävle','Borås','Sundsvall','Luleå','Visby'])[pg_temp.rint(a, 56, 1, 20)] AS city
               ) AS v;

-- ---------------------------------------------------------------------------------------------
\echo '  wishlists, carts'
-- 0-6 distinct products per customer who ever logged in (mean about 3). (The ORDER BYs below
-- only lay rows out like an application would; no id depends on them.)
INSERT INTO shop.wishlist_item (customer_id, product_id, added_at)
SELECT c.id,
       1 + (pg_temp.rint(c.id, 70, 0, :n_products - 1) + k * 37) % :n_products,   -- distinct per customer
       pg_temp.between(c.created_at, c.last_seen_at, pg_temp.rnd(c.id * 8 + k, 72))
  FROM shop.customer AS c,
       generate_series(1, floor(3.5 * (pg_temp.rnd(c.id, 71) + pg_temp.rnd(c.id, 73)))::int) AS k
 WHERE c.last_seen_at IS NOT NULL
 ORDER BY c.id, k;

-- An open cart for about 40 % of the customers, touched around their last visit.
INSERT INTO shop.cart (id, customer_id, created_at, updated_at) OVERRIDING SYSTEM VALUE
SELECT row_number() OVER (ORDER BY c.id), c.id, v.created_at, pg_temp.between(v.created_at, c.last_seen_at, pg_temp.rnd(c.id, 82))
  FROM shop.customer AS c,
       LATERAL (SELECT pg_temp.between(c.created_at, c.last_seen_at, 1 - 0.2 * pg_temp.rnd(c.id, 81)) AS created_at) AS v
 WHERE c.last_seen_at IS NOT NULL AND pg_temp.rnd(c.id, 80) < 0.408
 ORDER BY c.id;

INSERT INTO shop.cart_item (cart_id, product_id, qty, added_at)
SELECT t.id,
       1 + (pg_temp.rint(t.id, 83, 0, :n_products - 1) + k * 37) % :n_products,
       pg_temp.rint(t.id * 8 + k, 84, 1, 3),
       pg_temp.between(t.created_at, t.updated_at, pg_temp.rnd(t.id * 8 + k, 85))
  FROM shop.cart AS t, generate_series(1, pg_temp.rint(t.id, 86, 1, 5)::int) AS k
 ORDER BY t.id, k;

-- ---------------------------------------------------------------------------------------------
\echo '  newsletter'
-- n = rnd(id, 90): n < 0.50 consent (20 % of them revoked) and log events;
--                  0.50 <= n < 0.60 log events only (subscribers from before consents were
--                  recorded, since unsubscribed); else nothing.
INSERT INTO shop.newsletter_consent (id, customer_id, channel, given_at, revoked_at) OVERRIDING SYSTEM VALUE
SELECT row_number() OVER (ORDER BY c.id), c.id, 'email', v.given_at,
       CASE WHEN pg_temp.rnd(c.id, 91) < 0.2
            THEN pg_temp.between(v.given_at, pg_temp.t_ref(), pg_temp.rnd(c.id, 93)) END
  FROM shop.customer AS c,
       LATERAL (SELECT pg_temp.between(c.created_at, coalesce(c.last_seen_at, pg_temp.t_ref()),
                                       0.2 * pg_temp.rnd(c.id, 92)) AS given_at) AS v
 WHERE pg_temp.rnd(c.id, 90) < 0.5
 ORDER BY c.id;

-- Events of one subscriber: 'subscribed' at the start, 'opened' in between, 'unsubscribed' at
-- the end when the consent was revoked (or for the old subscribers without consent).
-- Orphans: customers 101, 202, ... (the gaps in customer.id) were deleted years ago, their
-- events were not. All events are inserted in time order (id order = time order, as in a log).
INSERT INTO shop.newsletter_log (id, customer_ref, event, at) OVERRIDING SYSTEM VALUE
SELECT row_number() OVER (ORDER BY at, ref, k), ref, event, at
  FROM (SELECT ref, k,
               CASE WHEN k = 1 THEN 'subscribed'
                    WHEN k = n AND unsubscribed THEN 'unsubscribed'
                    ELSE 'opened' END AS event,
               CASE WHEN k = 1 THEN t0
                    WHEN k = n AND unsubscribed THEN t1
                    ELSE pg_temp.between(t0, t1, (k - 1 + pg_temp.rnd(ref * 8 + k, 94)) / n) END AS at
          FROM (-- customers with a consent
                SELECT s.customer_id AS ref, s.given_at AS t0,
                       coalesce(s.revoked_at, pg_temp.t_ref()) AS t1,
                       s.revoked_at IS NOT NULL AS unsubscribed,
                       pg_temp.rint(s.customer_id, 95, CASE WHEN s.revoked_at IS NULL THEN 1 ELSE 2 END, 5)::int AS n
                  FROM shop.newsletter_consent AS s
                UNION ALL
                -- old subscribers without a recorded consent, since unsubscribed
                SELECT c.id, t0, pg_temp.between(t0, pg_temp.t_ref(), pg_temp.rnd(c.id, 97)), true,
                       pg_temp.rint(c.id, 95, 2, 5)::int
                  FROM shop.customer AS c,
                       LATERAL (SELECT pg_temp.between(c.created_at, pg_temp.t_ref(), 0.1 * pg_temp.rnd(c.id, 96)) AS t0) AS v
                 WHERE pg_temp.rnd(c.id, 90) >= 0.5 AND pg_temp.rnd(c.id, 90) < 0.6
                UNION ALL
                -- orphans: the deleted customers 101, 202, ...
                SELECT 101 * m, t0, pg_temp.t_ref() - interval '1 year', false, pg_temp.rint(101 * m, 95, 1, 4)::int
                  FROM generate_series(1, (:n_customers + (:n_customers - 1) / 100) / 101) AS m,
                       LATERAL (SELECT pg_temp.t_ref() - interval '6 years' * (1 - 0.8 * pg_temp.rnd(101 * m, 96)) AS t0) AS v
               ) AS subscriber,
               generate_series(1, n) AS k
       ) AS e
 ORDER BY at, ref, k;

-- ---------------------------------------------------------------------------------------------
\echo '  employees'
-- Hired over the last 15 years; about 25 % left, during the last 6 years. The personnummer is
-- unique by construction: (birth day, serial) = a bijection of the id on 18262 days x 1000.
INSERT INTO shop.employee (id, full_name, email, national_id, hired_on, employment_ended_on, store_id)
OVERRIDING SYSTEM VALUE
SELECT e, v.full_name,
       format('%s.%s@staff.gallra-shop.example', pg_temp.mailbox(v.full_name), e),
       to_char(v.born, 'YYYYMMDD') || '-' || lpad(v.serial::text, 3, '0')
           || pg_temp.luhn(to_char(v.born, 'YYMMDD') || lpad(v.serial::text, 3, '0')),
       v.hired_on,
       CASE WHEN pg_temp.rnd(e, 103) < 0.25 THEN
            v.left_from + floor(pg_temp.rnd(e, 104) * (pg_temp.t_ref()::date - v.left_from))::int END,
       CASE WHEN pg_temp.rnd(e, 105) < 0.8 THEN pg_temp.rint(e, 106, 1, :n_stores) END   -- else head office
  FROM generate_series(1::bigint, :n_employees) AS e,
       LATERAL (SELECT (e * 1000003 + pg_temp.rint(0, 100, 0, 18261999)) % 18262000 AS x,
                       pg_temp.first_name(e, 101) || ' ' || pg_temp.last_name(e, 102) AS full_name,
                       pg_temp.t_ref()::date - pg_temp.rint(e, 107, 0, 15 * 365)::int AS hired_on) AS h,
       LATERAL (SELECT h.full_name, h.hired_on,
                       date '1955-01-01' + (h.x / 1000)::int AS born,
                       h.x % 1000 AS serial,
                       greatest(h.hired_on, (pg_temp.t_ref() - interval '6 years')::date) AS left_from) AS v;

-- ---------------------------------------------------------------------------------------------
\echo '  identity sequences; keys, indexes, foreign keys'
\o /dev/null
SELECT format('SELECT setval(%L, coalesce((SELECT max(%I) FROM %s), 0) + 1, false)',
              pg_get_serial_sequence(a.attrelid::regclass::text, a.attname), a.attname, a.attrelid::regclass)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'shop'::regnamespace AND a.attidentity <> ''
\gexec
\o
SELECT ddl FROM saved_ddl ORDER BY step, ddl
\gexec

COMMIT;

\echo '  analyze'
SELECT format('ANALYZE %s', oid::regclass)
  FROM pg_class WHERE relnamespace = 'shop'::regnamespace AND relkind IN ('r', 'p')
\gexec

SELECT round(extract(epoch FROM clock_timestamp() - :'started'::timestamptz)::numeric, 1) AS seconds \gset
\echo 'gallra demo shop: generated in' :seconds 's'
