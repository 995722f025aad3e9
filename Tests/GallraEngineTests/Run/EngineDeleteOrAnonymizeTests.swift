import GallraTestSupport
import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import Testing

// Data points with `delete: true` and `anonymize` together, run dry then live (at DemoShop.asOf, 2026-11-29 00:00
// UTC) on a small schema, and checked against rows the test names by hand.

@Suite("Live runs: delete where possible, anonymize otherwise")
struct EngineDeleteOrAnonymizeTests {
    /// Invoices are bookkeeping the policy does not name: an order an invoice references must stay
    /// (ON DELETE RESTRICT), and so must an address another customer still uses.
    static let schema = """
        CREATE SCHEMA erase;
        CREATE TABLE erase.address (id bigint PRIMARY KEY, street text NOT NULL, phone text);
        CREATE TABLE erase.customer (
            id bigint PRIMARY KEY,
            email text NOT NULL UNIQUE,
            last_seen timestamptz,
            address_id bigint REFERENCES erase.address (id)
        );
        CREATE INDEX ON erase.customer (address_id);
        CREATE TABLE erase."order" (
            id bigint PRIMARY KEY,
            customer_id bigint REFERENCES erase.customer (id) ON DELETE RESTRICT,
            email text,
            total numeric(10, 2) NOT NULL
        );
        CREATE INDEX ON erase."order" (customer_id);
        CREATE TABLE erase.order_line (
            id bigint PRIMARY KEY,
            order_id bigint NOT NULL REFERENCES erase."order" (id),
            product text NOT NULL
        );
        CREATE INDEX ON erase.order_line (order_id);
        CREATE TABLE erase.invoice (
            no bigint PRIMARY KEY,
            order_id bigint NOT NULL REFERENCES erase."order" (id) ON DELETE RESTRICT,
            amount numeric(10, 2) NOT NULL
        );
        CREATE INDEX ON erase.invoice (order_id);
        INSERT INTO erase.address VALUES
            (1, 'Ada Street 1', '555-0001'), (2, 'Shared Road 2', '555-0002'), (3, 'Eve Lane 3', NULL);
        INSERT INTO erase.customer VALUES
            (1, 'ada@example.com', '2024-01-10 10:00+00', 1),
            (2, 'bo@example.com', '2024-02-10 10:00+00', 2),
            (3, 'cy@example.com', '2026-11-01 10:00+00', 2),
            (4, 'di@example.com', '2024-03-10 10:00+00', NULL),
            (5, 'eve@example.com', '2026-10-01 10:00+00', 3);
        INSERT INTO erase."order" VALUES
            (10, 1, 'ada@example.com', 10.00),
            (11, 1, 'ada@example.com', 11.00),
            (12, 2, 'bo@example.com', 12.00),
            (13, 4, 'di@example.com', 13.00),
            (14, 5, 'eve@example.com', 14.00);
        INSERT INTO erase.order_line VALUES (100, 10, 'Pen'), (101, 13, 'Ink'), (102, 14, 'Pad');
        INSERT INTO erase.invoice VALUES (500, 11, 11.00), (501, 13, 13.00), (502, 14, 14.00);
        """

    static func policy(batchSize: Int) -> String {
        """
        policy: erase-inactive
        state: active
        subject: { table: erase.customer, key: id }
        expires: { inactive_for: 1 year, activity: last_seen }
        data:
          - { table: erase.order_line, through: erase.order, delete: true }
          - { table: erase.order, delete: true, anonymize: { email: fake_email, customer_id: null } }
          - { table: erase.address, delete: true, anonymize: { street: redact, phone: null } }
          - { table: erase.customer, delete: true }
        limits: { batch_size: \(batchSize), max_fraction: 1 }
        """
    }

    /// Customers 1, 2 and 4 are due. Order 10 loses its line and is deleted; 11 and 13 have invoices and are
    /// anonymized and detached; 12 is deleted. Address 1 is customer 1's alone and deleted; address 2 is also
    /// customer 3's (not due) and anonymized.
    @Test(arguments: [1, 100])
    func keptRowsAreAnonymizedTheOthersDeleted(batchSize: Int) async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.schema, into: database, on: connection)
            let policy = try await EdgeCase.policy(Self.policy(batchSize: batchSize), on: connection)
            let oracles = [
                TableOracle(table: "erase.order_line", key: "t.id", deleted: ["100", "101"]),
                TableOracle(
                    table: #"erase."order""#, reported: "erase.order", key: "t.id", deleted: ["10", "12"],
                    anonymized: ["11", "13"], columns: ["email", "customer_id"]),
                TableOracle(
                    table: "erase.address", key: "t.id", deleted: ["1"], anonymized: ["2"],
                    columns: ["street", "phone"]),
                TableOracle(table: "erase.customer", key: "t.id", deleted: ["1", "2", "4"]),
                TableOracle(table: "erase.invoice", key: "t.no"),
            ]
            let before = try await oracles.snapshots(on: connection)
            // What gallra explain predicts for customer 1, before the run.
            let explained = try await DemoShop.engine(connection).explain(
                table: QualifiedName(schema: "erase", name: "customer"), key: "1", policies: [policy], disabled: [],
                asOf: PostgresTimestamp(DemoShop.asOf), digester: nil)
            let standing = try #require(explained.policies.first)
            #expect(standing.verdict == .due)
            #expect(
                standing.steps.map { "\($0.table) \($0.action) \($0.rows) \($0.anonymized.map(String.init) ?? "-")" }
                    == [
                        "erase.order_line delete 1 -", "erase.order delete_or_anonymize 2 1",
                        "erase.customer delete 1 -", "erase.address delete_or_anonymize 1 0",
                    ])

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            #expect(live.expiring == 3)
            EdgeCase.expectSameNumbers(dry: dry, live: live)
            for oracle in oracles.dropLast() {
                oracle.expectCounted(in: live)
                oracle.expectCounted(in: dry)
            }
            let orderStep = try #require(live.steps.first { $0.table == "erase.order" })
            #expect(orderStep.action == .deleteOrAnonymize)
            #expect(orderStep.rows == 4 && orderStep.anonymized == 2 && orderStep.retained == 0)
            try await oracles.expectDone(since: before, on: connection)
            #expect(
                try await keys(
                    """
                    SELECT id::text AS k FROM erase."order"
                    WHERE customer_id IS NULL AND email LIKE 'anon-%@example.invalid' ORDER BY id
                    """, on: connection) == ["11", "13"])
            #expect(
                try await keys(
                    "SELECT id::text AS k FROM erase.address WHERE street = '[redacted]' AND phone IS NULL",
                    on: connection) == ["2"])

            // The audit trail counts deleted and anonymized rows of one table apart, as the reports do.
            let audited = try await connection.query(
                """
                SELECT c->>'table' AS t, c->>'action' AS a, sum((c->>'rows')::int)::bigint AS n
                FROM gallra.audit_subject, jsonb_array_elements(counts) AS c
                GROUP BY 1, 2 ORDER BY 1, 2
                """
            ).map {
                "\(try $0.decode("t", as: String.self)) \(try $0.decode("a", as: String.self)) \(try $0.decode("n", as: Int.self))"
            }
            #expect(
                audited == [
                    "erase.address anonymized 1", "erase.address deleted 1", "erase.customer deleted 3",
                    "erase.order anonymized 2", "erase.order deleted 2", "erase.order_line deleted 2",
                ])
            // Customer 1's own record holds what explain predicted.
            let digest = try DemoShop.auditKey().digester.digest(table: "erase.customer", key: "1")
            let history = try await AuditTrail.lookup(digest: digest, on: connection)
            #expect(
                Set(try #require(history.first).counts) == [
                    AuditCount(table: "erase.order_line", action: .deleted, rows: 1),
                    AuditCount(table: "erase.order", action: .deleted, rows: 1),
                    AuditCount(table: "erase.order", action: .anonymized, rows: 1),
                    AuditCount(table: "erase.address", action: .deleted, rows: 1),
                    AuditCount(table: "erase.customer", action: .deleted, rows: 1),
                ])
            // Every subject row is gone: gallra keeps no key of them.
            #expect(try await scalar("SELECT count(*) FROM gallra.processed", as: Int.self, on: connection) == 0)
        }
    }

    /// The subject row itself: deleted where no order references it, anonymized (and remembered as processed, so
    /// that it is not due again) where one does.
    @Test func theSubjectRowIsDeletedUnlessReferenced() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.schema, into: database, on: connection)
            try await connection.execute("UPDATE erase.customer SET last_seen = '2024-01-01 00:00+00' WHERE id = 5")
            try await connection.execute("DELETE FROM erase.invoice WHERE no = 501")
            try await connection.execute("DELETE FROM erase.order_line WHERE id = 101")
            try await connection.execute(#"DELETE FROM erase."order" WHERE id = 13"#)
            let policy = try await EdgeCase.policy(
                """
                policy: erase-accounts
                state: active
                subject: { table: erase.customer, key: id }
                expires: { inactive_for: 1 year, activity: last_seen }
                data:
                  - { table: erase.customer, delete: true, anonymize: { email: fake_email, address_id: null } }
                limits: { batch_size: 2, max_fraction: 1 }
                """, on: connection)
            // 1, 2 and 5 have orders: anonymized. 4 has none: deleted.
            let oracle = TableOracle(
                table: "erase.customer", key: "t.id", deleted: ["4"], anonymized: ["1", "2", "5"],
                columns: ["email", "address_id"])
            let before = try await oracle.snapshot(on: connection)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            #expect(live.expiring == 4)
            EdgeCase.expectSameNumbers(dry: dry, live: live)
            oracle.expectCounted(in: live)
            oracle.expectCounted(in: dry)
            try await oracle.expectDone(since: before, on: connection)
            #expect(
                try await keys("SELECT subject_key AS k FROM gallra.processed ORDER BY 1", on: connection) == [
                    "1", "2", "5",
                ])
        }
    }

    /// A partitioned table with a composite key, referenced through a composite foreign key from another
    /// partitioned table, and rows of one table referencing others of the same table.
    static let partitionedSchema = """
        CREATE SCHEMA part;
        CREATE TABLE part.member (id bigint PRIMARY KEY, last_seen timestamptz);
        CREATE TABLE part.booking (
            id bigint NOT NULL,
            region text NOT NULL,
            member_id bigint REFERENCES part.member (id),
            note text,
            follows_id bigint,
            follows_region text,
            PRIMARY KEY (id, region),
            FOREIGN KEY (follows_id, follows_region) REFERENCES part.booking (id, region)
        ) PARTITION BY LIST (region);
        CREATE TABLE part.booking_eu PARTITION OF part.booking FOR VALUES IN ('eu');
        CREATE TABLE part.booking_us PARTITION OF part.booking FOR VALUES IN ('us');
        CREATE INDEX ON part.booking (member_id);
        CREATE TABLE part.receipt (
            no bigint NOT NULL,
            region text NOT NULL,
            booking_id bigint NOT NULL,
            PRIMARY KEY (no, region),
            FOREIGN KEY (booking_id, region) REFERENCES part.booking (id, region) ON DELETE CASCADE
        ) PARTITION BY LIST (region);
        CREATE TABLE part.receipt_eu PARTITION OF part.receipt FOR VALUES IN ('eu');
        CREATE TABLE part.receipt_us PARTITION OF part.receipt FOR VALUES IN ('us');
        INSERT INTO part.member VALUES (1, '2024-01-01 00:00+00'), (2, '2026-11-01 00:00+00');
        INSERT INTO part.booking VALUES
            (1, 'eu', 1, 'first', NULL, NULL),
            (1, 'us', 1, 'receipted', NULL, NULL),
            (2, 'eu', 1, 'followed', NULL, NULL),
            (3, 'us', 1, 'follows', 2, 'eu'),
            (4, 'eu', 2, 'another member', NULL, NULL);
        INSERT INTO part.receipt VALUES (7, 'us', 1), (8, 'eu', 4);
        """

    /// Booking (1, us) has a receipt (ON DELETE CASCADE: deleting it would delete the receipt): kept. Booking
    /// (2, eu) is followed by (3, us), a booking of the same member deleted in the same statement: judged on one
    /// snapshot, it is kept. The others of member 1 are deleted, in both partitions.
    @Test func partitionedTablesAndCompositeKeys() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.partitionedSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: part
                state: active
                subject: { table: part.member, key: id }
                expires: { inactive_for: 1 year, activity: last_seen }
                data:
                  - { table: part.booking, delete: true, anonymize: { note: redact, member_id: null } }
                  - { table: part.member, delete: true }
                limits: { max_fraction: 1 }
                """, on: connection)
            let oracles = [
                TableOracle(
                    table: "part.booking", key: "(t.id, t.region)", deleted: ["(1,eu)", "(3,us)"],
                    anonymized: ["(1,us)", "(2,eu)"], columns: ["note", "member_id"]),
                TableOracle(table: "part.member", key: "t.id", deleted: ["1"]),
                TableOracle(table: "part.receipt", key: "(t.no, t.region)"),
            ]
            let before = try await oracles.snapshots(on: connection)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            EdgeCase.expectSameNumbers(dry: dry, live: live)
            oracles[0].expectCounted(in: live)
            oracles[1].expectCounted(in: live)
            try await oracles.expectDone(since: before, on: connection)
            #expect(
                try await keys(
                    "SELECT (id, region)::text AS k FROM part.booking WHERE note = '[redacted]' ORDER BY id, region",
                    on: connection) == ["(1,us)", "(2,eu)"])
        }
    }

    /// A receipt (ON DELETE CASCADE) for booking (1, eu) is being inserted by the shop when the batch reaches the
    /// booking: the batch's lock waits for it, and once it commits the booking is kept and anonymized, and the new
    /// receipt survives: deleting the booking would have cascaded to it.
    @Test func aReferenceInsertedWhileTheBatchWaitsKeepsTheRow() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.partitionedSchema, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: part
                state: active
                subject: { table: part.member, key: id }
                expires: { inactive_for: 1 year, activity: last_seen }
                data:
                  - { table: part.booking, delete: true, anonymize: { note: redact, member_id: null } }
                  - { table: part.member, delete: true }
                limits: { max_fraction: 1 }
                """, on: connection)
            let shop = try await database.connect()
            try await shop.execute("BEGIN")
            try await shop.execute("INSERT INTO part.receipt VALUES (9, 'eu', 1)")
            var options = DemoShop.options(.live)
            options.lockTimeout = .seconds(30)
            let engine = try DemoShop.engine(connection)
            async let report = engine.run([policy], options: options)
            // The batch waits for the receipt's row lock on booking (1, eu); the shop commits meanwhile.
            var waiting = false
            for _ in 0..<100 where !waiting {
                try await Task.sleep(for: .milliseconds(50))
                waiting = try await scalar(
                    "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE OF x%'",
                    as: Bool.self, on: shop)
            }
            #expect(waiting, "the batch never waited for the shop's insert")
            try await shop.execute("COMMIT")
            await shop.close()
            let done = try #require(try await report.policies.first)
            #expect(done.failure == nil && done.skippedBatches.isEmpty)
            #expect(
                try await keys(
                    "SELECT (id, region)::text AS k FROM part.booking WHERE note = '[redacted]' ORDER BY id, region",
                    on: connection) == ["(1,eu)", "(1,us)", "(2,eu)"])
            #expect(
                try await keys("SELECT (no, region)::text AS k FROM part.receipt ORDER BY no, region", on: connection)
                    == ["(7,us)", "(8,eu)", "(9,eu)"])
        }
    }
}
