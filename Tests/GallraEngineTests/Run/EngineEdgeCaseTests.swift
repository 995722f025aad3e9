import GallraTestSupport
import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import Testing

// Every test: its own database, a schema of a few tables with explicit rows, a policy written inline, a dry
// run and a live run (at DemoShop.asOf, 2026-11-29 00:00 UTC), and the result checked against rows the test
// names by hand. Periods are counted back from that instant: 1 year ago is 2025-11-29.

@Suite("Live runs on edge-case schemas, against hand-written oracles")
struct EngineEdgeCaseTests {
    // MARK: - Text keys that need quoting in a list

    /// Subject keys with commas, braces, quotes, backslashes, spaces, the word NULL and the empty string, two to a
    /// batch: every statement that names a batch's subjects reads them from one bound list of keys.
    static let awkwardKeysSchema = #"""
        CREATE SCHEMA app;
        CREATE TABLE app.account (handle text PRIMARY KEY, last_seen timestamptz NOT NULL);
        CREATE TABLE app.note (id integer PRIMARY KEY, handle text NOT NULL REFERENCES app.account, body text NOT NULL);
        CREATE TABLE app.login (id integer PRIMARY KEY, handle text REFERENCES app.account, ip text);
        INSERT INTO app.account VALUES
            ('a,b', '2024-01-01 00:00+00'), ('{x}', '2024-01-01 00:00+00'), ('"q"', '2024-01-01 00:00+00'),
            (E'back\\slash', '2024-01-01 00:00+00'), ('NULL', '2024-01-01 00:00+00'), (' sp ', '2024-01-01 00:00+00'),
            ('', '2024-01-01 00:00+00'), ('é ü', '2024-01-01 00:00+00'), (E'\\"', '2024-01-01 00:00+00'),
            ('null', '2026-11-01 00:00+00'), ('b,a', '2026-11-01 00:00+00'), ('{}', '2026-11-01 00:00+00');
        INSERT INTO app.note VALUES
            (1, 'a,b', 'one'), (2, '{x}', 'two'), (3, '"q"', 'three'), (4, E'back\\slash', 'four'), (5, 'NULL', 'five'),
            (6, ' sp ', 'six'), (7, '', 'seven'), (8, 'é ü', 'eight'), (9, E'\\"', 'nine'), (10, 'null', 'ten'),
            (11, 'b,a', 'eleven'), (12, '{}', 'twelve');
        INSERT INTO app.login VALUES
            (1, 'a,b', '192.0.2.1'), (2, 'NULL', '192.0.2.2'), (3, '', '192.0.2.3'), (4, 'null', '192.0.2.4'),
            (5, E'\\"', '192.0.2.5'), (6, '{}', '192.0.2.6');
        """#

    @Test func textKeysThatNeedQuotingInAListAreProcessedAsThemselves() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.awkwardKeysSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: awkward-keys
                state: active
                subject: { table: app.account, key: handle }
                expires: { inactive_for: 1 year, activity: last_seen }
                data:
                  - { table: app.note, delete: true }
                  - { table: app.login, anonymize: { ip: null, handle: null } }
                  - { table: app.account, delete: true }
                limits: { batch_size: 2, max_fraction: 1 }
                """, on: connection)
            let due = ["a,b", "{x}", "\"q\"", #"back\slash"#, "NULL", " sp ", "", "é ü", #"\""#]
            let oracles = [
                TableOracle(table: "app.account", key: "t.handle", deleted: due),
                TableOracle(table: "app.note", key: "t.id", deleted: (1...9).map(String.init)),
                TableOracle(
                    table: "app.login", key: "t.id", anonymized: ["1", "2", "3", "5"], columns: ["ip", "handle"]),
            ]
            let before = try await oracles.snapshots(on: connection)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            EdgeCase.expectSameNumbers(dry: dry, live: live)
            #expect(live.expiring == 9)
            #expect(live.processed == 9)
            #expect(live.batches == 5)
            for oracle in oracles { oracle.expectCounted(in: live) }
            try await oracles.expectDone(since: before, on: connection)
            // The audit trail holds one record per subject, under the digest of its exact key.
            let recorded = try await scalar(
                "SELECT count(*) AS n FROM gallra.audit_subject", as: Int.self, on: connection)
            #expect(recorded == 9)
        }
    }

    // MARK: - Quoted mixed-case names

    static let quotedSchema = #"""
        CREATE SCHEMA "Shop";
        CREATE TABLE "Shop"."Customer" (
            "Customer ID" bigint PRIMARY KEY,
            "Full Name" text NOT NULL,
            "E-mail" text,
            "Last ""Seen""" timestamptz,
            "Legal Hold" boolean NOT NULL DEFAULT false
        );
        CREATE TABLE "Shop"."Order Items" (
            "Item ID" integer PRIMARY KEY,
            "Customer ID" bigint NOT NULL REFERENCES "Shop"."Customer" ("Customer ID"),
            "Product" text NOT NULL
        );
        CREATE TABLE "Shop"."Invoice" (
            "Invoice No" integer PRIMARY KEY,
            "Customer ID" bigint REFERENCES "Shop"."Customer" ("Customer ID"),
            "E-mail" text,
            "Billing ""Name""" text NOT NULL,
            "Amount" numeric(10, 2) NOT NULL
        );
        INSERT INTO "Shop"."Customer" VALUES
            (1, 'Ada Old', 'ada@example.com', '2024-01-10 10:00+00', false),
            (2, 'Bo Recent', 'bo@example.com', '2026-10-01 10:00+00', false),
            (3, 'Cy Held', 'cy@example.com', '2023-05-05 10:00+00', true),
            (4, 'Di Old', NULL, '2025-06-01 10:00+00', false),
            (5, 'Ed Unknown', 'ed@example.com', NULL, false),
            (6, 'Fay Recent', 'fay@example.com', '2026-11-28 23:00+00', false);
        INSERT INTO "Shop"."Order Items" VALUES
            (10, 1, 'Pen'), (11, 1, 'Ink'), (12, 2, 'Pad'), (13, 3, 'Cap'), (14, 4, 'Mug'), (15, 6, 'Hat');
        INSERT INTO "Shop"."Invoice" VALUES
            (100, 1, 'ada@example.com', 'Ada Old', 10.00),
            (101, 2, 'bo@example.com', 'Bo Recent', 12.00),
            (102, 4, NULL, 'Di Old', 5.50),
            (103, 4, 'di@work.example', 'Di O.', 7.25),
            (104, NULL, 'walk-in@example.com', 'Walk In', 3.00),
            (105, 3, 'cy@example.com', 'Cy Held', 9.99);
        """#

    @Test func quotedMixedCaseNamesWithSpacesAndQuotes() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.quotedSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                #"""
                policy: quoted-names
                state: active
                subject: { table: '"Shop"."Customer"', key: '"Customer ID"' }
                expires: { inactive_for: 1 year, activity: '"Last ""Seen"""' }
                except:
                  - { column: '"Legal Hold"', is: true }
                data:
                  - table: '"Shop"."Invoice"'
                    anonymize: { '"E-mail"': fake_email, '"Billing ""Name"""': redact, '"Customer ID"': null }
                  - { table: '"Shop"."Order Items"', delete: true }
                  - { table: '"Shop"."Customer"', delete: true }
                limits: { max_fraction: 1 }
                """#, on: connection)
            // 1 and 4 were last seen over a year ago; 3 too, but is on legal hold; 5 was never seen.
            let oracles = [
                TableOracle(table: #""Shop"."Customer""#, key: #"t."Customer ID""#, deleted: ["1", "4"]),
                TableOracle(table: #""Shop"."Order Items""#, key: #"t."Item ID""#, deleted: ["10", "11", "14"]),
                TableOracle(
                    table: #""Shop"."Invoice""#, key: #"t."Invoice No""#, anonymized: ["100", "102", "103"],
                    columns: ["E-mail", #"Billing "Name""#, "Customer ID"]),
            ]
            try await execute([#"CREATE TEMP TABLE invoice_before AS SELECT * FROM "Shop"."Invoice""#], on: connection)
            let before = try await oracles.snapshots(on: connection)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            EdgeCase.expectSameNumbers(dry: dry, live: live)
            #expect(live.expiring == 2)
            #expect(live.exempted == 1)
            for oracle in oracles { oracle.expectCounted(in: live) }
            try await oracles.expectDone(since: before, on: connection)
            let anonymized = try await keys(
                #"""
                SELECT i."Invoice No"::text AS k FROM "Shop"."Invoice" i JOIN invoice_before b USING ("Invoice No")
                WHERE i."Billing ""Name""" = '[redacted]' AND i."Customer ID" IS NULL
                  AND CASE WHEN b."E-mail" IS NULL THEN i."E-mail" IS NULL
                      ELSE i."E-mail" ~ '^anon-[0-9a-f]{19}@example\.invalid$' END
                ORDER BY 1
                """#, on: connection)
            #expect(anonymized == ["100", "102", "103"])
        }
    }

    // MARK: - A partitioned child table

    static let partitionedSchema = """
        CREATE SCHEMA app;
        CREATE TABLE app.member (id integer PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL);
        CREATE TABLE app.event (
            id bigint NOT NULL,
            member_id integer NOT NULL REFERENCES app.member (id),
            at timestamptz NOT NULL,
            kind text NOT NULL,
            PRIMARY KEY (id, at)
        ) PARTITION BY RANGE (at);
        CREATE TABLE app.event_2025 PARTITION OF app.event FOR VALUES FROM ('2025-01-01 00:00+00') TO ('2026-01-01 00:00+00');
        CREATE TABLE app.event_2026 PARTITION OF app.event FOR VALUES FROM ('2026-01-01 00:00+00') TO ('2027-01-01 00:00+00');
        CREATE INDEX ON app.event (member_id);
        CREATE TABLE app.note (
            id integer NOT NULL,
            region text NOT NULL,
            member_id integer REFERENCES app.member (id),
            body text,
            PRIMARY KEY (id, region)
        ) PARTITION BY LIST (region);
        CREATE TABLE app.note_eu PARTITION OF app.note FOR VALUES IN ('eu');
        CREATE TABLE app.note_us PARTITION OF app.note FOR VALUES IN ('us');
        INSERT INTO app.member VALUES
            (1, 'Old One', '2022-03-01 00:00+00'),
            (2, 'New Two', '2026-02-01 00:00+00'),
            (3, 'Old Three', '2023-01-15 00:00+00'),
            (4, 'Not Quite', '2023-11-29 00:00+00');
        INSERT INTO app.event VALUES
            (1, 1, '2025-03-01 00:00+00', 'login'),
            (2, 1, '2026-03-01 00:00+00', 'login'),
            (3, 2, '2025-05-01 00:00+00', 'login'),
            (4, 2, '2026-05-01 00:00+00', 'purchase'),
            (5, 3, '2026-07-01 00:00+00', 'login'),
            (6, 3, '2025-12-31 23:59+00', 'logout'),
            (7, 4, '2025-08-08 08:00+00', 'login');
        INSERT INTO app.note VALUES
            (1, 'eu', 1, 'likes tea'), (2, 'us', 1, 'moved'), (3, 'us', 2, 'new'), (4, 'eu', 3, NULL),
            (5, 'eu', NULL, 'orphan');
        """

    @Test func aPartitionedChildTableIsPurgedInEveryPartition() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.partitionedSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: old-members
                state: active
                subject: { table: app.member, key: id }
                expires: { older_than: 3 years, created: created_at }
                data:
                  - { table: app.event, delete: true }
                  - { table: app.note, anonymize: { body: redact, member_id: null } }
                  - { table: app.member, delete: true }
                limits: { max_fraction: 1 }
                """, on: connection)
            #expect(policy.resolved.steps.first { $0.table.name == "event" }?.isPartitioned == true)
            // Created before 2023-11-29: 1 and 3; 4 was created exactly at the cutoff and is kept.
            let oracles = [
                TableOracle(table: "app.member", key: "t.id", deleted: ["1", "3"]),
                TableOracle(table: "app.event", key: "t.id", deleted: ["1", "2", "5", "6"]),
                TableOracle(
                    table: "app.note", key: "(t.id, t.region)", anonymized: ["(1,eu)", "(2,us)", "(4,eu)"],
                    columns: ["body", "member_id"]),
            ]
            let before = try await oracles.snapshots(on: connection)
            // Both partitions hold rows of expiring members.
            #expect(
                try await scalar(
                    "SELECT count(*) FROM app.event_2025 WHERE member_id IN (1, 3)", as: Int.self, on: connection) == 2)
            #expect(
                try await scalar(
                    "SELECT count(*) FROM app.event_2026 WHERE member_id IN (1, 3)", as: Int.self, on: connection) == 2)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            EdgeCase.expectSameNumbers(dry: dry, live: live)
            #expect(live.expiring == 2)
            for oracle in oracles { oracle.expectCounted(in: live) }
            try await oracles.expectDone(since: before, on: connection)
            #expect(
                try await keys("SELECT id::text AS k FROM app.event_2025 ORDER BY id", on: connection) == ["3", "7"])
            #expect(try await keys("SELECT id::text AS k FROM app.event_2026 ORDER BY id", on: connection) == ["4"])
            #expect(
                try await keys(
                    """
                    SELECT id::text AS k FROM app.note
                    WHERE member_id IS NULL AND body IS NOT DISTINCT FROM CASE WHEN id = 5 THEN 'orphan' ELSE '[redacted]' END
                    ORDER BY id
                    """, on: connection) == ["1", "2", "4", "5"])
        }
    }

    // MARK: - A link without a foreign key

    static let viaSchema = """
        CREATE SCHEMA crm;
        CREATE TABLE crm.person (id bigint PRIMARY KEY, name text NOT NULL, last_seen date);
        -- No foreign keys: the links are named with via. mail_log holds an int4 for an int8 key.
        CREATE TABLE crm.mail_log (id integer PRIMARY KEY, person_ref integer, subject text NOT NULL);
        CREATE TABLE crm.call_note (id integer PRIMARY KEY, person_ref bigint, note text);
        CREATE TABLE crm.tag (id integer PRIMARY KEY, person_code text, label text);
        INSERT INTO crm.person VALUES
            (1, 'A', '2024-01-01'), (2, 'B', '2026-11-01'), (3, 'C', '2023-06-30'), (5000000000, 'Big', '2020-01-01');
        INSERT INTO crm.mail_log VALUES
            (1, 1, 'Welcome'), (2, 1, 'Reminder'), (3, 2, 'Welcome'), (4, 3, 'Bye'), (5, NULL, 'Broadcast'),
            (6, 4, 'Orphan');
        INSERT INTO crm.call_note VALUES
            (1, 1, 'called'), (2, 3, 'no answer'), (3, 2, 'called back'), (4, 5000000000, 'big'), (5, NULL, 'x'),
            (6, 7, 'orphan');
        INSERT INTO crm.tag VALUES (1, '1', 'vip');
        """

    @Test func aLinkWithoutAForeignKeyNamedWithVia() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.viaSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: inactive-people
                state: active
                subject: { table: crm.person, key: id }
                expires: { inactive_for: 1 year, activity: last_seen }
                data:
                  - { table: crm.mail_log, via: person_ref, delete: true }
                  - { table: crm.call_note, via: person_ref, anonymize: { note: redact, person_ref: null } }
                  - { table: crm.person, delete: true }
                limits: { max_fraction: 1 }
                """, on: connection)
            #expect(policy.resolved.steps.allSatisfy { $0.path.allSatisfy { $0.foreignKey == nil } })
            let oracles = [
                TableOracle(table: "crm.person", key: "t.id", deleted: ["1", "3", "5000000000"]),
                TableOracle(table: "crm.mail_log", key: "t.id", deleted: ["1", "2", "4"]),
                TableOracle(
                    table: "crm.call_note", key: "t.id", anonymized: ["1", "2", "4"], columns: ["note", "person_ref"]),
            ]
            let before = try await oracles.snapshots(on: connection)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            EdgeCase.expectSameNumbers(dry: dry, live: live)
            for oracle in oracles { oracle.expectCounted(in: live) }
            try await oracles.expectDone(since: before, on: connection)
            #expect(
                try await keys(
                    "SELECT id::text AS k FROM crm.call_note WHERE note = '[redacted]' AND person_ref IS NULL ORDER BY id",
                    on: connection) == ["1", "2", "4"])
        }
    }

    @Test func aViaLinkBetweenTextAndBigintIsRefused() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.viaSchema, into: database, on: connection)
            let validation = try await EdgeCase.validation(
                """
                policy: tags
                state: active
                subject: { table: crm.person, key: id }
                expires: { inactive_for: 1 year, activity: last_seen }
                data:
                  - { table: crm.tag, via: person_code, delete: true }
                """, on: connection)
            #expect(validation.resolved == nil)
            #expect(
                validation.errors.contains { $0.message.contains("person_code") && $0.message.contains("text") },
                "\(validation.errors)")
        }
    }

    // MARK: - A two-hop path

    static let twoHopSchema = """
        CREATE SCHEMA sales;
        CREATE TABLE sales.client (id integer PRIMARY KEY, name text NOT NULL, closed_on date);
        CREATE TABLE sales."order" (
            id integer PRIMARY KEY,
            client_id integer REFERENCES sales.client (id),
            email text,
            placed_on date NOT NULL,
            total numeric(8, 2) NOT NULL
        );
        CREATE TABLE sales.order_line (
            id integer PRIMARY KEY,
            order_id integer NOT NULL REFERENCES sales."order" (id),
            product text NOT NULL,
            qty integer NOT NULL
        );
        INSERT INTO sales.client VALUES
            (1, 'Closed long ago', '2022-05-01'), (2, 'Open', NULL), (3, 'Closed recently', '2026-01-10'),
            (4, 'Closed long ago too', '2023-11-01');
        INSERT INTO sales."order" VALUES
            (10, 1, 'one@example.com', '2021-01-01', 10), (11, 1, 'one@example.com', '2021-06-01', 20),
            (12, 2, 'two@example.com', '2024-01-01', 30), (13, 3, 'three@example.com', '2025-01-01', 40),
            (14, 4, 'four@example.com', '2022-01-01', 50), (15, NULL, 'guest@example.com', '2023-01-01', 60),
            (16, 4, NULL, '2022-02-02', 70);
        INSERT INTO sales.order_line VALUES
            (100, 10, 'Pen', 1), (101, 10, 'Ink', 2), (102, 11, 'Pad', 1), (103, 12, 'Cap', 1), (104, 13, 'Mug', 1),
            (105, 14, 'Hat', 3), (106, 15, 'Bag', 1);
        """

    @Test func aTwoHopPathThroughAnAnonymizedTable() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.twoHopSchema, into: database, on: connection)
            // Written in an order that would break the path: the orders are detached before their lines are
            // found. The validator orders the lines first.
            let policy = try await EdgeCase.policy(
                """
                policy: closed-clients
                state: active
                subject: { table: sales.client, key: id }
                expires: { after: 2 years, event: closed_on }
                data:
                  - { table: 'sales."order"', anonymize: { email: redact, client_id: null } }
                  - { table: sales.order_line, through: 'sales."order"', delete: true }
                  - { table: sales.client, delete: true }
                limits: { max_fraction: 1 }
                """, on: connection)
            #expect(policy.resolved.steps.map(\.table.name) == ["order_line", "order", "client"])
            // Closed before 2024-11-29: 1 and 4.
            let oracles = [
                TableOracle(table: "sales.client", key: "t.id", deleted: ["1", "4"]),
                TableOracle(
                    table: #"sales."order""#, reported: "sales.order", key: "t.id",
                    anonymized: ["10", "11", "14", "16"],
                    columns: ["email", "client_id"]),
                TableOracle(table: "sales.order_line", key: "t.id", deleted: ["100", "101", "102", "105"]),
            ]
            let before = try await oracles.snapshots(on: connection)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            EdgeCase.expectSameNumbers(dry: dry, live: live)
            for oracle in oracles { oracle.expectCounted(in: live) }
            try await oracles.expectDone(since: before, on: connection)
            #expect(
                try await keys(
                    #"""
                    SELECT id::text AS k FROM sales."order"
                    WHERE client_id IS NULL AND email = '[redacted]' AND id <> 15
                    ORDER BY id
                    """#, on: connection) == ["10", "11", "14", "16"])
        }
    }

    // MARK: - Rows the subject points to, shared or not

    static let addressSchema = """
        CREATE SCHEMA geo;
        CREATE TABLE geo.address (id integer PRIMARY KEY, street text NOT NULL, city text NOT NULL, phone text);
        CREATE TABLE geo.store (id integer PRIMARY KEY, name text NOT NULL, address_id integer REFERENCES geo.address (id));
        CREATE TABLE geo.account (
            id integer PRIMARY KEY,
            name text NOT NULL,
            address_id integer REFERENCES geo.address (id),
            last_login timestamptz,
            legal_hold boolean NOT NULL DEFAULT false
        );
        INSERT INTO geo.address VALUES
            (1, '1 Own Road', 'Umea', '+46 1'), (2, '2 Shared Lane', 'Lund', '+46 2'), (3, '3 Store Street', 'Kiruna', NULL),
            (4, '4 Hold Way', 'Visby', '+46 4'), (5, '5 Pair Path', 'Malmo', '+46 5'), (6, '6 Active Ave', 'Gavle', '+46 6'),
            (7, '7 Nobody Row', 'Mora', '+46 7');
        INSERT INTO geo.store VALUES (1, 'Main Street Shop', 3);
        INSERT INTO geo.account VALUES
            (1, 'own address', 1, '2024-01-01 00:00+00', false),
            (2, 'shares with an active account', 2, '2024-01-01 00:00+00', false),
            (3, 'active', 2, '2026-11-01 00:00+00', false),
            (4, 'shares with a store', 3, '2024-01-01 00:00+00', false),
            (5, 'shares with a held account', 4, '2024-01-01 00:00+00', false),
            (6, 'held', 4, '2024-01-01 00:00+00', true),
            (7, 'pair a', 5, '2024-02-01 00:00+00', false),
            (8, 'pair b', 5, '2024-03-01 00:00+00', false),
            (9, 'active, own address', 6, '2026-10-01 00:00+00', false),
            (10, 'no address', NULL, '2024-01-01 00:00+00', false);
        """

    /// In one batch, and one subject per batch: the address 7 and 8 share is theirs alone either way.
    @Test(arguments: [1, 100])
    func rowsTheSubjectPointsToAreAnonymizedUnlessShared(batchSize: Int) async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.addressSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: inactive-accounts
                state: active
                subject: { table: geo.account, key: id }
                expires: { inactive_for: 1 year, activity: last_login }
                except:
                  - { column: legal_hold, is: true }
                data:
                  - { table: geo.address, anonymize: { street: redact, phone: null } }
                  - { table: geo.account, delete: true }
                limits: { batch_size: \(batchSize), max_fraction: 1 }
                """, on: connection)
            let oracles = [
                TableOracle(table: "geo.account", key: "t.id", deleted: ["1", "2", "4", "5", "7", "8", "10"]),
                // 2 is used by the active account 3, 3 by a store, 4 by the held account 6: retained.
                TableOracle(table: "geo.address", key: "t.id", anonymized: ["1", "5"], columns: ["street", "phone"]),
                TableOracle(table: "geo.store", key: "t.id"),
            ]
            let before = try await oracles.snapshots(on: connection)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            #expect(live.expiring == 7)
            #expect(live.exempted == 1)
            #expect(live.batches == (batchSize == 1 ? 7 : 1))
            oracles[0].expectCounted(in: live)
            oracles[0].expectCounted(in: dry)
            oracles[1].expectCounted(in: dry, retained: 3)
            #expect(dry.expiring == live.expiring && dry.exempted == live.exempted && dry.processed == live.processed)
            #expect(dry.batches == live.batches)
            #expect(dry.steps.map(\.retained) == live.steps.map(\.retained))
            let accountStep = { (report: PolicyRunReport) in report.steps.first { $0.table == "geo.account" } }
            #expect(accountStep(dry) == accountStep(live))
            let addressRows = { (report: PolicyRunReport) in report.steps.first { $0.table == "geo.address" }?.rows }
            #expect(addressRows(dry) == 2)
            // In batches of one, the address 7 and 8 share is acted on in 7's batch and left out of 8's
            // (gallra.processed_row): counted once, as the dry run counts it.
            #expect(addressRows(live) == 2)
            EdgeCase.expectSameNumbers(dry: dry, live: live)
            #expect(live.tables.first { $0.table == "geo.address" }?.retained == 3)
            try await oracles.expectDone(since: before, on: connection)
            #expect(
                try await keys(
                    "SELECT id::text AS k FROM geo.address WHERE street = '[redacted]' AND phone IS NULL ORDER BY id",
                    on: connection) == ["1", "5"])
            // The audit trail says which subjects' addresses were retained: 2, 4 and 5, one row each.
            #expect(
                try await scalar(
                    """
                    SELECT coalesce(sum((c->>'rows')::int), 0) FROM gallra.audit_subject, jsonb_array_elements(counts) c
                    WHERE c->>'table' = 'geo.address' AND c->>'action' = 'retained'
                    """, as: Int.self, on: connection) == 3)
        }
    }

    /// A keyed pseudonym of a row two due subjects share is computed once, whatever the batches.
    @Test(arguments: [1, 100])
    func aSharedRowIsHashedOnceWhateverTheBatches(batchSize: Int) async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.addressSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: hashed-addresses
                state: active
                subject: { table: geo.account, key: id }
                expires: { inactive_for: 1 year, activity: last_login }
                except:
                  - { column: legal_hold, is: true }
                data:
                  - { table: geo.address, anonymize: { phone: hash } }
                  - { table: geo.account, delete: true }
                limits: { batch_size: \(batchSize), max_fraction: 1 }
                """, on: connection)
            try await execute(["CREATE TEMP TABLE address_before AS SELECT * FROM geo.address"], on: connection)

            _ = try await EdgeCase.run(policy, on: connection)

            let salt = Digest.hex(
                Digest.hmacSHA256(key: DemoShop.keyBytes, message: Array("hash:hashed-addresses".utf8)))
            let hashedOnce = try await keys(
                """
                SELECT a.id::text AS k FROM geo.address a JOIN address_before b USING (id)
                WHERE a.phone = encode(sha256(convert_to($1 || b.phone, 'UTF8')), 'hex')
                ORDER BY a.id
                """, [.text(salt)], on: connection)
            // Address 5 (accounts 7 and 8) is hashed in 7's batch only: with batches of one, 8's batch finds it
            // in gallra.processed_row and leaves it.
            #expect(hashedOnce == ["1", "5"])
        }
    }

    /// A run cut short between batches leaves each shared row's pseudonym computed once: the next run (and a dry
    /// run before it) leaves out the rows the first one did.
    @Test func aRunCutShortHashesEverySharedRowOnce() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.addressSchema, into: database, on: connection)
            // Due: accounts 1, 2, 4, 5, 7 (first batch), 8, 10 (second). 7 and 8 share address 5.
            let policy = try await EdgeCase.policy(
                """
                policy: hashed-addresses
                state: active
                subject: { table: geo.account, key: id }
                expires: { inactive_for: 1 year, activity: last_login }
                except:
                  - { column: legal_hold, is: true }
                data:
                  - { table: geo.address, anonymize: { phone: hash } }
                  - { table: geo.account, delete: true }
                limits: { batch_size: 5, max_fraction: 1 }
                """, on: connection)
            try await execute(["CREATE TEMP TABLE address_before AS SELECT * FROM geo.address"], on: connection)
            let engine = try DemoShop.engine(connection)
            let addressStep = { (report: PolicyRunReport?) in report?.steps.first { $0.table == "geo.address" } }

            // The first run stops after its first batch (as a signal between batches stops it).
            let cut = try await Task {
                try await engine.run([policy], options: DemoShop.options(.live)) { _ in
                    withUnsafeCurrentTask { $0?.cancel() }
                }
            }.value
            #expect(cut.outcome == .interrupted)
            let first = try #require(cut.policies.first)
            #expect(first.batches == 1)
            #expect(first.processed == 5)
            #expect(addressStep(first)?.rows == 2)  // 1 and 5; 2, 3 and 4 are shared
            #expect(addressStep(first)?.retained == 3)
            #expect(
                try await keys(
                    "SELECT row_key AS k FROM gallra.processed_row WHERE policy = 'hashed-addresses' ORDER BY row_key",
                    on: connection) == [#"{"id": 1}"#, #"{"id": 5}"#])

            // The rest: account 8's address 5 is done, account 10 has none. A dry run predicts exactly that.
            let (dry, live) = try await EdgeCase.run(policy, on: connection)
            #expect(live.processed == 2)
            #expect(addressStep(live)?.rows == 0)
            #expect(addressStep(live)?.retained == 0)
            EdgeCase.expectSameNumbers(dry: dry, live: live)

            let salt = Digest.hex(
                Digest.hmacSHA256(key: DemoShop.keyBytes, message: Array("hash:hashed-addresses".utf8)))
            #expect(
                try await keys(
                    """
                    SELECT a.id::text AS k FROM geo.address a JOIN address_before b USING (id)
                    WHERE a.phone = encode(sha256(convert_to($1 || b.phone, 'UTF8')), 'hex')
                    ORDER BY a.id
                    """, [.text(salt)], on: connection) == ["1", "5"])
            #expect(
                try await keys(
                    """
                    SELECT a.id::text AS k FROM geo.address a JOIN address_before b USING (id)
                    WHERE a.phone IS NOT DISTINCT FROM b.phone ORDER BY a.id
                    """, on: connection) == ["2", "3", "4", "6", "7"])
        }
    }

    /// A row the policy anonymized that the application has written to since is acted on again when a later
    /// subject uses it: the record holds only while the row holds what the policy wrote.
    @Test func aProcessedRowChangedSinceIsActedOnAgain() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.addressSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: hashed-addresses
                state: active
                subject: { table: geo.account, key: id }
                expires: { inactive_for: 1 year, activity: last_login }
                except:
                  - { column: legal_hold, is: true }
                data:
                  - { table: geo.address, anonymize: { phone: hash } }
                  - { table: geo.account, delete: true }
                limits: { batch_size: 100, max_fraction: 1 }
                """, on: connection)
            _ = try await EdgeCase.run(policy, on: connection)
            // A new, long inactive account moves into address 1 and writes a new phone number there.
            try await execute(
                [
                    "INSERT INTO geo.account VALUES (11, 'moved in', 1, '2024-01-01 00:00+00', false)",
                    "UPDATE geo.address SET phone = '+46 11' WHERE id = 1",
                ], on: connection)
            let (dry, live) = try await EdgeCase.run(policy, on: connection)
            #expect(live.processed == 1)
            #expect(live.steps.first { $0.table == "geo.address" }?.rows == 1)
            EdgeCase.expectSameNumbers(dry: dry, live: live)
            let salt = Digest.hex(
                Digest.hmacSHA256(key: DemoShop.keyBytes, message: Array("hash:hashed-addresses".utf8)))
            #expect(
                try await scalar(
                    "SELECT phone = encode(sha256(convert_to($1 || '+46 11', 'UTF8')), 'hex') FROM geo.address WHERE id = 1",
                    [.text(salt)], as: Bool.self, on: connection))
        }
    }

    // MARK: - ON DELETE RESTRICT

    static let restrictSchema = """
        CREATE SCHEMA r;
        CREATE TABLE r.owner (id integer PRIMARY KEY, name text NOT NULL, created_on date NOT NULL);
        CREATE TABLE r.pet (
            id integer PRIMARY KEY,
            owner_id integer,
            name text NOT NULL,
            chip text,
            CONSTRAINT pet_owner_restrict FOREIGN KEY (owner_id) REFERENCES r.owner (id) ON DELETE RESTRICT
        );
        INSERT INTO r.owner VALUES (1, 'Old', '2015-01-01'), (2, 'New', '2025-01-01'), (3, 'Old, no pets', '2016-01-01');
        INSERT INTO r.pet VALUES (10, 1, 'Rex', 'c10'), (11, 1, 'Tom', 'c11'), (12, 2, 'Kit', 'c12'), (13, NULL, 'Stray', 'c13');
        """

    static func restrictPolicy(_ pet: String) -> String {
        """
        policy: old-owners
        state: active
        subject: { table: r.owner, key: id }
        expires: { older_than: 5 years, created: created_on }
        data:
          - \(pet)
          - { table: r.owner, delete: true }
        limits: { max_fraction: 1 }
        """
    }

    @Test(arguments: [
        "{ table: r.pet, delete: true }",
        "{ table: r.pet, anonymize: { name: redact, owner_id: null } }",
    ])
    func aRestrictedChildIsDeletedOrDetachedBeforeItsParent(pet: String) async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.restrictSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(Self.restrictPolicy(pet), on: connection)
            let deletesPets = pet.contains("delete")
            let oracles = [
                TableOracle(table: "r.owner", key: "t.id", deleted: ["1", "3"]),
                deletesPets
                    ? TableOracle(table: "r.pet", key: "t.id", deleted: ["10", "11"])
                    : TableOracle(
                        table: "r.pet", key: "t.id", anonymized: ["10", "11"], columns: ["name", "owner_id"]),
            ]
            let before = try await oracles.snapshots(on: connection)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            EdgeCase.expectSameNumbers(dry: dry, live: live)
            for oracle in oracles { oracle.expectCounted(in: live) }
            try await oracles.expectDone(since: before, on: connection)
            if !deletesPets {
                #expect(
                    try await keys(
                        "SELECT id::text AS k FROM r.pet WHERE name = '[redacted]' AND owner_id IS NULL ORDER BY id",
                        on: connection) == ["10", "11"])
            }
        }
    }

    @Test func keepingARestrictedChildWithItsReferenceIsRefused() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.restrictSchema, into: database, on: connection)
            let validation = try await EdgeCase.validation(
                Self.restrictPolicy("{ table: r.pet, anonymize: { name: redact } }"), on: connection)
            #expect(validation.resolved == nil)
            #expect(validation.errors.count == 1)
            let error = try #require(validation.errors.first)
            #expect(error.message.contains("pet_owner_restrict"), "\(error)")
            #expect(error.message.contains("owner_id"), "\(error)")
        }
    }

    // MARK: - Each rule kind

    static let rulesSchema = """
        CREATE SCHEMA k;
        CREATE TABLE k.person (id integer PRIMARY KEY, name text NOT NULL, created_at timestamptz, left_on date);
        CREATE TABLE k.visit (id integer PRIMARY KEY, person_id integer NOT NULL REFERENCES k.person (id), at timestamptz);
        CREATE TABLE k.consent (
            id integer PRIMARY KEY,
            person_id integer NOT NULL REFERENCES k.person (id),
            given_at timestamptz NOT NULL,
            revoked_at timestamptz
        );
        INSERT INTO k.person VALUES
            (1, 'one', '2019-01-01 00:00+00', NULL),
            (2, 'two', '2021-11-29 00:00+00', '2020-06-30'),
            (3, 'three', '2021-11-28 23:59:59+00', '2024-06-01'),
            (4, 'four', NULL, '2025-12-31'),
            (5, 'five', '2025-01-01 00:00+00', NULL),
            (6, 'six', '2025-06-01 00:00+00', NULL);
        INSERT INTO k.visit VALUES
            (1, 1, '2024-01-01 00:00+00'), (2, 1, '2025-03-01 00:00+00'),
            (3, 2, '2024-01-01 00:00+00'), (4, 2, '2026-11-01 00:00+00'),
            (5, 4, '2023-01-01 00:00+00'), (6, 4, NULL),
            (7, 5, '2025-11-28 23:00+00');
        INSERT INTO k.consent VALUES
            (1, 1, '2024-01-01 00:00+00', '2026-10-20 00:00+00'),
            (2, 2, '2024-01-01 00:00+00', '2026-11-19 00:00+00'),
            (3, 3, '2024-01-01 00:00+00', '2026-10-20 00:00+00'),
            (4, 3, '2026-11-01 00:00+00', NULL),
            (5, 5, '2024-01-01 00:00+00', '2026-01-01 00:00+00'),
            (6, 5, '2026-02-01 00:00+00', '2026-09-01 00:00+00'),
            (7, 6, '2024-01-01 00:00+00', '2026-10-20 00:00+00'),
            (8, 6, '2026-11-01 00:00+00', '2026-11-20 00:00+00');
        """

    struct RuleCase: Sendable, CustomTestStringConvertible {
        var rule: String
        var expiring: [String]
        var testDescription: String { rule }
    }

    static let ruleCases = [
        // Created before 2021-11-29: 1, and 3 a second before; 2 exactly at the cutoff; 4 unknown.
        RuleCase(rule: "{ older_than: 5 years, created: created_at }", expiring: ["1", "3"]),
        // Left before 2024-11-29: 2 and 3; 1, 5 and 6 never left (null); 4 left recently.
        RuleCase(rule: "{ after: 2 years, event: left_on }", expiring: ["2", "3"]),
        // Every visit before 2025-11-29: 1 and 5; 2 has a recent visit, 3 and 6 none, 4 one of unknown date.
        RuleCase(rule: "{ inactive_for: 1 year, activity: { table: k.visit, column: at } }", expiring: ["1", "5"]),
        // Revoked before 2026-10-30 with nothing in force: 1 and 5; 2 revoked 10 days ago; 3 gave consent again;
        // 6 gave it again and revoked it 9 days ago; 4 never consented.
        RuleCase(
            rule: "{ consent_revoked: 30 days, consent: { table: k.consent, revoked_at: revoked_at } }",
            expiring: ["1", "5"]),
    ]

    @Test(arguments: ruleCases)
    func eachRuleKindExpiresExactlyTheSubjectsItShould(_ rule: RuleCase) async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.rulesSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: rule-kinds
                state: active
                subject: { table: k.person, key: id }
                expires: \(rule.rule)
                data:
                  - { table: k.person, anonymize: { name: redact } }
                limits: { max_fraction: 1 }
                """, on: connection)
            let oracles = [
                TableOracle(table: "k.person", key: "t.id", anonymized: rule.expiring, columns: ["name"]),
                TableOracle(table: "k.visit", key: "t.id"),
                TableOracle(table: "k.consent", key: "t.id"),
            ]
            let before = try await oracles.snapshots(on: connection)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            EdgeCase.expectSameNumbers(dry: dry, live: live)
            #expect(live.expiring == rule.expiring.count)
            oracles[0].expectCounted(in: live)
            try await oracles.expectDone(since: before, on: connection)
            #expect(
                try await keys(
                    "SELECT id::text AS k FROM k.person WHERE name = '[redacted]' ORDER BY id", on: connection)
                    == rule.expiring)
        }
    }

    // MARK: - Exemptions

    static let exemptionSchema = """
        CREATE SCHEMA ex;
        CREATE TABLE ex.person (
            id integer PRIMARY KEY,
            name text NOT NULL,
            created_at timestamptz NOT NULL,
            vip boolean,
            country text,
            tier text,
            status text
        );
        CREATE TABLE ex."case" (id integer PRIMARY KEY, person_id integer NOT NULL REFERENCES ex.person (id), status text);
        INSERT INTO ex.person VALUES
            (1, 'one', '2019-01-01 00:00+00', true, 'SE', 'gold', 'closed'),
            (2, 'two', '2019-01-01 00:00+00', false, 'se', 'staff', 'open'),
            (3, 'three', '2019-01-01 00:00+00', NULL, NULL, NULL, NULL),
            (4, 'four', '2019-01-01 00:00+00', false, 'DE', 'silver', 'active'),
            (5, 'five', '2019-01-01 00:00+00', false, 'SE', NULL, 'closed'),
            (6, 'six', '2019-01-01 00:00+00', false, 'NO', 'bronze', 'closed');
        INSERT INTO ex."case" VALUES (1, 1, 'open'), (2, 2, 'closed'), (3, 4, NULL), (4, 4, 'closed'), (5, 5, 'closed'),
            (6, 5, 'open');
        """

    struct ExemptionCase: Sendable, CustomTestStringConvertible {
        var exemption: String
        var exempted: [String]
        var testDescription: String { exemption }
    }

    /// Every person has expired; each case names the ones its exemption keeps (docs/policy-language.md, "Nulls").
    static let exemptionCases = [
        ExemptionCase(exemption: "{ column: vip, is: true }", exempted: ["1"]),
        ExemptionCase(exemption: "{ column: vip, is: false }", exempted: ["2", "4", "5", "6"]),
        ExemptionCase(exemption: "{ column: vip, is: null }", exempted: ["3"]),
        // Case-sensitive, and never a null column.
        ExemptionCase(exemption: "{ column: country, equals: SE }", exempted: ["1", "5"]),
        ExemptionCase(exemption: "{ column: country, equals: null }", exempted: ["3"]),
        ExemptionCase(exemption: "{ column: tier, in: [gold, staff] }", exempted: ["1", "2"]),
        ExemptionCase(exemption: "{ column: tier, in: [gold, null] }", exempted: ["1", "3", "5"]),
        // A null column is not exempt.
        ExemptionCase(exemption: "{ column: status, not_in: [closed] }", exempted: ["2", "4"]),
        ExemptionCase(exemption: #"{ exists: 'ex."case"', where: { status: open } }"#, exempted: ["1", "5"]),
        ExemptionCase(
            exemption: #"{ exists: 'ex."case"', where: { status: { in: [open, closed] } } }"#,
            exempted: ["1", "2", "4", "5"]),
        ExemptionCase(exemption: #"{ exists: 'ex."case"', where: { status: null } }"#, exempted: ["4"]),
        ExemptionCase(exemption: #"{ exists: 'ex."case"' }"#, exempted: ["1", "2", "4", "5"]),
    ]

    @Test(arguments: exemptionCases)
    func eachExemptionKeepsExactlyTheSubjectsItShould(_ exemption: ExemptionCase) async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.exemptionSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: exemptions
                state: active
                subject: { table: ex.person, key: id }
                expires: { older_than: 1 year, created: created_at }
                except:
                  - \(exemption.exemption)
                data:
                  - { table: ex.person, anonymize: { name: redact } }
                limits: { max_fraction: 1 }
                """, on: connection)
            let all = ["1", "2", "3", "4", "5", "6"]
            let expiring = all.filter { !exemption.exempted.contains($0) }
            let oracles = [
                TableOracle(table: "ex.person", key: "t.id", anonymized: expiring, columns: ["name"]),
                TableOracle(table: #"ex."case""#, key: "t.id"),
            ]
            let before = try await oracles.snapshots(on: connection)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            EdgeCase.expectSameNumbers(dry: dry, live: live)
            #expect(live.expiring == expiring.count)
            #expect(live.exempted == exemption.exempted.count)
            oracles[0].expectCounted(in: live)
            try await oracles.expectDone(since: before, on: connection)
            #expect(
                try await keys(
                    "SELECT id::text AS k FROM ex.person WHERE name = '[redacted]' ORDER BY id", on: connection)
                    == expiring)
        }
    }

    // MARK: - Strategies on real columns

    static let strategySchema = """
        CREATE SCHEMA st;
        CREATE TABLE st.person (
            id integer PRIMARY KEY,
            created_at timestamptz NOT NULL,
            note text,
            name text NOT NULL,
            code varchar(5),
            score integer,
            born date,
            remark text,
            phone text,
            email varchar(60),
            seen_at timestamptz,
            joined date,
            status text,
            level integer,
            city text
        );
        INSERT INTO st.person VALUES
            (1, '2019-01-01 00:00+00', 'note 1', 'Ann', 'A1', 42, '1980-02-03', 'r1', '+46 555 0101', 'same@example.com',
             '2024-05-17 13:45:10+00', '2020-07-19', 'active', 1, 'Umea'),
            (2, '2019-01-01 00:00+00', 'note 2', 'Ben', 'B22', -7, '1990-12-31', 'r2', '+46 555 0101', 'same@example.com',
             '2023-12-31 23:59:59+00', '2021-12-31', 'active', 2, 'Lund'),
            (3, '2019-01-01 00:00+00', NULL, 'Cat', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
            (4, '2019-01-01 00:00+00', 'note 4', 'Dan', 'D4444', 0, '2000-01-01', 'r4', '+46 555 0404', 'dan@example.com',
             '2022-02-01 00:00:00+00', '2022-02-01', 'paused', 4, 'Mora'),
            (5, '2026-06-01 00:00+00', 'note 5', 'Eve', 'E5', 5, '1970-05-05', 'r5', '+46 555 0101', 'eve@example.com',
             '2026-06-01 12:00:00+00', '2026-06-01', 'active', 5, 'Gavle');
        CREATE TABLE st.twin (LIKE st.person INCLUDING ALL);
        INSERT INTO st.twin SELECT * FROM st.person;
        """

    static func strategyPolicy(_ name: String, table: String) -> String {
        """
        policy: \(name)
        state: active
        subject: { table: \(table), key: id }
        expires: { older_than: 2 years, created: created_at }
        data:
          - table: \(table)
            anonymize:
              note: null
              name: redact
              code: redact
              score: redact
              born: redact
              remark: redact("gone")
              phone: hash
              email: fake_email
              seen_at: truncate(month)
              joined: truncate(month)
              status: set(inactive)
              level: { set: 3 }
        limits: { max_fraction: 1 }
        """
    }

    @Test func eachStrategyWritesWhatTheLanguageReferenceSays() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.strategySchema, into: database, on: connection)
            let person = try await EdgeCase.policy(
                Self.strategyPolicy("strategies", table: "st.person"), on: connection)
            let twin = try await EdgeCase.policy(
                Self.strategyPolicy("strategies-twin", table: "st.twin"), on: connection)
            let columns = [
                "note", "name", "code", "score", "born", "remark", "phone", "email", "seen_at", "joined", "status",
                "level",
            ]
            let oracles = [
                TableOracle(table: "st.person", key: "t.id", anonymized: ["1", "2", "3", "4"], columns: columns),
                TableOracle(table: "st.twin", key: "t.id", anonymized: ["1", "2", "3", "4"], columns: columns),
            ]
            try await execute(["CREATE TEMP TABLE person_before AS SELECT * FROM st.person"], on: connection)
            let before = try await oracles.snapshots(on: connection)

            let (dry, live) = try await EdgeCase.run([person, twin], on: connection)

            for (planned, done) in zip(dry, live) { EdgeCase.expectSameNumbers(dry: planned, live: done) }
            oracles[0].expectCounted(in: try #require(live.first))
            oracles[1].expectCounted(in: try #require(live.last))
            try await oracles.expectDone(since: before, on: connection)

            // Every column as the reference says, row by row, against the values before.
            let salt = Digest.hex(Digest.hmacSHA256(key: DemoShop.keyBytes, message: Array("hash:strategies".utf8)))
            let exact = try await keys(
                """
                SELECT p.id::text AS k FROM st.person p JOIN person_before b USING (id)
                WHERE p.note IS NULL
                  AND p.name = '[redacted]'
                  AND p.code = 'xxxxx'
                  AND p.score = 0
                  AND p.born = '1970-01-01'
                  AND p.remark = 'gone'
                  AND p.phone IS NOT DISTINCT FROM encode(sha256(convert_to($1 || b.phone, 'UTF8')), 'hex')
                  AND CASE WHEN b.email IS NULL THEN p.email IS NULL
                      ELSE p.email ~ '^anon-[0-9a-f]{19}@example\\.invalid$' AND length(p.email) <= 40 END
                  AND p.seen_at IS NOT DISTINCT FROM date_trunc('month', b.seen_at)
                  AND p.joined IS NOT DISTINCT FROM date_trunc('month', b.joined)::date
                  AND p.status = 'inactive'
                  AND p.level = 3
                ORDER BY p.id
                """, [.text(salt)], on: connection)
            #expect(exact == ["1", "2", "3", "4"])
            // Hash: 64 hex digits, equal for equal values within a policy, different in another policy.
            #expect(
                try await keys(
                    "SELECT id::text AS k FROM st.person WHERE phone ~ '^[0-9a-f]{64}$' ORDER BY id", on: connection)
                    == ["1", "2", "4"])
            #expect(
                try await scalar(
                    "SELECT (SELECT phone FROM st.person WHERE id = 1) = (SELECT phone FROM st.person WHERE id = 2)",
                    as: Bool.self, on: connection))
            #expect(
                try await scalar(
                    "SELECT count(*) FROM st.person p JOIN st.twin t USING (id) WHERE p.phone = t.phone AND id <= 4",
                    as: Int.self, on: connection) == 0)
            // fake_email: unique even for equal addresses, across both tables.
            #expect(
                try await scalar(
                    """
                    SELECT count(DISTINCT email) FROM (SELECT email FROM st.person WHERE id <= 4
                                                     UNION ALL SELECT email FROM st.twin WHERE id <= 4) e
                    """, as: Int.self, on: connection) == 6)
        }
    }
}
