-- gallra demo shop: schema.
--
-- A small, realistic web shop in schema `shop`, the target of gallra's demo, tests and
-- benchmarks. It fits the policy example of docs/architecture.md and contains the traps a retention
-- tool must handle (see config/demo/README.md):
--   * addresses shared between customers, and between a customer and a store;
--   * legal_hold on customers (an exemption);
--   * shop.newsletter_log.customer_ref: a link to the customer with NO foreign key (and no
--     index), with orphan rows;
--   * shop."order".customer_id ... ON DELETE RESTRICT: a customer with orders cannot be
--     deleted while the orders are kept;
--   * shop.order_line.order_id ... NO ACTION: lines must be deleted before their order;
--   * UNIQUE NOT NULL columns (customer.email, employee.national_id) that `null` or a constant
--     strategy must not touch.
--
-- Idempotent: drops and recreates schema `shop` (and everything in it). Load with
--   psql "$DB" -v ON_ERROR_STOP=1 -f config/demo/schema.sql
-- then fill it with config/demo/generate.sql.
--
-- Foreign keys and what a delete of the referenced row does:
--   customer.address_id          -> address   NO ACTION  (nullable)
--   store.address_id             -> address   NO ACTION
--   "order".customer_id          -> customer  RESTRICT   (nullable: NULL once the account is erased)
--   "order".shipping_address_id  -> address   NO ACTION
--   order_line.order_id          -> "order"   NO ACTION  (delete lines first)
--   order_line.product_id        -> product   NO ACTION
--   wishlist_item.customer_id    -> customer  NO ACTION  (the application deletes them itself)
--   wishlist_item.product_id     -> product   CASCADE
--   cart.customer_id             -> customer  CASCADE
--   cart_item.cart_id            -> cart      CASCADE
--   cart_item.product_id         -> product   CASCADE
--   newsletter_consent.customer_id -> customer CASCADE
--   newsletter_log.customer_ref  (no foreign key)

DROP SCHEMA IF EXISTS shop CASCADE;
CREATE SCHEMA shop;
COMMENT ON SCHEMA shop IS
    'gallra demo shop: a small web shop for gallra''s demo, tests and benchmarks (config/demo/schema.sql)';

-- ---------------------------------------------------------------------------------------------
-- Postal addresses, shared by customers, stores and orders (shipping address).
CREATE TABLE shop.address (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    street      text NOT NULL,
    postal_code text NOT NULL,
    city        text NOT NULL,
    country     char(2) NOT NULL DEFAULT 'SE',   -- ISO 3166-1 alpha-2
    phone       text                             -- contact phone for deliveries, optional
);
COMMENT ON TABLE shop.address IS
    'Postal addresses. Referenced by customer.address_id, store.address_id and '
    '"order".shipping_address_id; one row may be shared by several customers (a household) '
    'or by a customer and a store (personal data and non-personal data in the same row).';

-- ---------------------------------------------------------------------------------------------
-- Customers: the subjects of the demo policies.
CREATE TABLE shop.customer (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email        text NOT NULL UNIQUE,
    full_name    text NOT NULL,
    phone        text,
    birth_date   date,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz,                    -- NULL: never logged in since the account was created
    legal_hold   boolean NOT NULL DEFAULT false,
    address_id   bigint REFERENCES shop.address (id),
    CONSTRAINT customer_seen_after_created CHECK (last_seen_at >= created_at)
);
COMMENT ON TABLE shop.customer IS
    'Customer accounts (the data subjects). last_seen_at is the last login, NULL when the '
    'customer never logged in (account created at a newsletter sign-up or a store); '
    'legal_hold = true while a dispute or an authority''s request forbids erasure.';
COMMENT ON COLUMN shop.customer.last_seen_at IS
    'Last login; NULL = never logged in. gallra never expires a NULL activity: a policy on created_at (older_than) covers such accounts.';
COMMENT ON COLUMN shop.customer.legal_hold IS
    'Exempt from erasure while true (dispute, fraud investigation, authority request).';
CREATE INDEX customer_last_seen_at_idx ON shop.customer (last_seen_at);
CREATE INDEX customer_address_id_idx ON shop.customer (address_id);

-- ---------------------------------------------------------------------------------------------
-- Physical stores (pick-up points); their address rows may also be a customer's address.
CREATE TABLE shop.store (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    address_id bigint NOT NULL REFERENCES shop.address (id)
);
COMMENT ON TABLE shop.store IS
    'Shop locations. Not personal data, but their address rows live in shop.address and a few '
    'customers (staff living above the shop, pick-up at a store) point to the same row.';
CREATE INDEX store_address_id_idx ON shop.store (address_id);

-- ---------------------------------------------------------------------------------------------
CREATE TABLE shop.product (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku   text NOT NULL UNIQUE,
    name  text NOT NULL,
    price numeric(10,2) NOT NULL CHECK (price >= 0)
);
COMMENT ON TABLE shop.product IS 'The catalogue (no personal data).';

-- ---------------------------------------------------------------------------------------------
-- Orders keep a copy of the contact data at the time of purchase. Bookkeeping law requires
-- keeping orders for years, so a retention policy anonymizes them instead of deleting them.
CREATE TABLE shop."order" (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id         bigint,
    placed_at           timestamptz NOT NULL,
    status              text NOT NULL DEFAULT 'placed'
                        CHECK (status IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled', 'returned')),
    email               text NOT NULL,             -- copy at purchase time
    full_name           text NOT NULL,             -- copy at purchase time
    phone               text,                      -- copy at purchase time, optional
    birth_date          date,                      -- age check for age-restricted goods, else NULL
    shipping_address_id bigint REFERENCES shop.address (id),
    total               numeric(12,2) NOT NULL DEFAULT 0,
    CONSTRAINT order_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES shop.customer (id) ON DELETE RESTRICT
);
COMMENT ON TABLE shop."order" IS
    'Orders, with a copy of the buyer''s contact data. "order" is a reserved word: always quoted. '
    'customer_id is ON DELETE RESTRICT: a customer cannot be deleted while an order refers to it; '
    'it is nullable so that a kept (anonymized) order can be detached from an erased account.';
COMMENT ON CONSTRAINT order_customer_id_fkey ON shop."order" IS
    'RESTRICT on purpose: orders are bookkeeping records; erase the customer only after deleting '
    'the orders or setting customer_id to NULL.';
CREATE INDEX order_customer_id_idx ON shop."order" (customer_id);
CREATE INDEX order_shipping_address_id_idx ON shop."order" (shipping_address_id);
CREATE INDEX order_placed_at_idx ON shop."order" (placed_at);

-- ---------------------------------------------------------------------------------------------
CREATE TABLE shop.order_line (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   bigint NOT NULL REFERENCES shop."order" (id),   -- NO ACTION: delete lines first
    line_no    smallint NOT NULL,
    product_id bigint NOT NULL REFERENCES shop.product (id),
    qty        integer NOT NULL CHECK (qty > 0),
    unit_price numeric(10,2) NOT NULL,
    UNIQUE (order_id, line_no)
);
COMMENT ON TABLE shop.order_line IS
    'Order lines. order_id is NO ACTION (no cascade, as in most hand-written schemas): a purge '
    'that deletes orders must delete their lines first. The UNIQUE (order_id, line_no) index '
    'serves the foreign key.';
CREATE INDEX order_line_product_id_idx ON shop.order_line (product_id);

-- ---------------------------------------------------------------------------------------------
CREATE TABLE shop.wishlist_item (
    customer_id bigint NOT NULL REFERENCES shop.customer (id),
    product_id  bigint NOT NULL REFERENCES shop.product (id) ON DELETE CASCADE,
    added_at    timestamptz NOT NULL,
    PRIMARY KEY (customer_id, product_id)
);
COMMENT ON TABLE shop.wishlist_item IS
    'Products a customer saved for later. customer_id is NO ACTION: deleting a customer with '
    'wishlist items fails unless the items are deleted first.';
CREATE INDEX wishlist_item_product_id_idx ON shop.wishlist_item (product_id);

-- ---------------------------------------------------------------------------------------------
CREATE TABLE shop.cart (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL UNIQUE REFERENCES shop.customer (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
COMMENT ON TABLE shop.cart IS
    'The open shopping cart, at most one per customer; goes away with the customer (CASCADE).';

CREATE TABLE shop.cart_item (
    cart_id    bigint NOT NULL REFERENCES shop.cart (id) ON DELETE CASCADE,
    product_id bigint NOT NULL REFERENCES shop.product (id) ON DELETE CASCADE,
    qty        integer NOT NULL CHECK (qty > 0),
    added_at   timestamptz NOT NULL,
    PRIMARY KEY (cart_id, product_id)
);
COMMENT ON TABLE shop.cart_item IS 'Items in a cart (two hops from the customer: cart_item -> cart -> customer).';
CREATE INDEX cart_item_product_id_idx ON shop.cart_item (product_id);

-- ---------------------------------------------------------------------------------------------
-- The newsletter service was a separate application with its own database, merged later: its
-- link to the customer was never declared as a foreign key and has no index.
CREATE TABLE shop.newsletter_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_ref bigint NOT NULL,      -- shop.customer.id, NOT a foreign key (rows may be orphans)
    event        text NOT NULL CHECK (event IN ('subscribed', 'unsubscribed', 'opened')),
    at           timestamptz NOT NULL
);
COMMENT ON TABLE shop.newsletter_log IS
    'Newsletter events. customer_ref holds a shop.customer.id but has NO foreign key (a policy '
    'must name it with `via: customer_ref`) and deliberately NO index (deleting by customer_ref '
    'scans the table; gallra''s validator should warn). Some rows refer to customers deleted '
    'long ago (orphans).';
COMMENT ON COLUMN shop.newsletter_log.customer_ref IS
    'shop.customer.id without a declared foreign key and without an index (deliberate).';

-- ---------------------------------------------------------------------------------------------
CREATE TABLE shop.newsletter_consent (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES shop.customer (id) ON DELETE CASCADE,
    channel     text NOT NULL DEFAULT 'email' CHECK (channel IN ('email', 'sms')),
    given_at    timestamptz NOT NULL,
    revoked_at  timestamptz,           -- NULL while the consent holds
    UNIQUE (customer_id, channel),
    CONSTRAINT consent_revoked_after_given CHECK (revoked_at >= given_at)
);
COMMENT ON TABLE shop.newsletter_consent IS
    'Marketing consent (GDPR Art. 6(1)(a)). revoked_at set = consent withdrawn; the rule '
    '"consent revoked + grace period" expires these subjects.';

-- ---------------------------------------------------------------------------------------------
-- Employees: a second kind of subject (rule `after: employment_ended_on + period`).
CREATE TABLE shop.employee (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    full_name           text NOT NULL,
    email               text NOT NULL UNIQUE,
    national_id         text NOT NULL UNIQUE,  -- Swedish personnummer YYYYMMDD-NNNC (fake, valid check digit)
    hired_on            date NOT NULL,
    employment_ended_on date,                  -- NULL while employed
    store_id            bigint REFERENCES shop.store (id),
    CONSTRAINT employee_ended_after_hired CHECK (employment_ended_on >= hired_on)
);
COMMENT ON TABLE shop.employee IS
    'Staff. employment_ended_on is the event for an `after:` rule (e.g. keep HR data for 2 years '
    'after the employment ended). national_id is UNIQUE NOT NULL: neither `null` nor a constant '
    'strategy fits it.';
COMMENT ON COLUMN shop.employee.national_id IS 'Swedish personnummer (fake; valid Luhn check digit).';
CREATE INDEX employee_store_id_idx ON shop.employee (store_id);
CREATE INDEX employee_employment_ended_on_idx ON shop.employee (employment_ended_on);
