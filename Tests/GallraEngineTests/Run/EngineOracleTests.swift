import GallraTestSupport
import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import Testing

/// The expected effect of `inactive-customers` on the demo shop, written by hand (never by the planner).
enum InactiveCustomersOracle {
    /// Temporary tables holding what should happen: exp_customer, exp_order, exp_cart, exp_address, orig_order.
    static let setup = [
        """
        CREATE TEMP TABLE exp_customer AS SELECT id FROM shop.customer
        WHERE last_seen_at < '\(DemoShop.asOfText)'::timestamptz - interval '1 year' AND NOT legal_hold
        """,
        #"CREATE TEMP TABLE exp_order AS SELECT id FROM shop."order" WHERE customer_id IN (SELECT id FROM exp_customer)"#,
        "CREATE TEMP TABLE exp_cart AS SELECT id FROM shop.cart WHERE customer_id IN (SELECT id FROM exp_customer)",
        #"""
        CREATE TEMP TABLE exp_address AS SELECT a.id FROM shop.address a
        WHERE (a.id IN (SELECT address_id FROM shop.customer WHERE id IN (SELECT id FROM exp_customer))
               OR a.id IN (SELECT shipping_address_id FROM shop."order" WHERE id IN (SELECT id FROM exp_order)))
          AND NOT EXISTS (SELECT FROM shop.customer c WHERE c.address_id = a.id AND c.id NOT IN (SELECT id FROM exp_customer))
          AND NOT EXISTS (SELECT FROM shop.store s WHERE s.address_id = a.id)
          AND NOT EXISTS (SELECT FROM shop."order" o WHERE o.shipping_address_id = a.id AND o.id NOT IN (SELECT id FROM exp_order))
        """#,
        #"CREATE TEMP TABLE orig_order AS SELECT * FROM shop."order" WHERE id IN (SELECT id FROM exp_order)"#,
        "CREATE TEMP TABLE orig_address AS SELECT * FROM shop.address WHERE id IN (SELECT id FROM exp_address)",
    ]

    /// Rows that must not change, by name.
    static let untouched: [(String, String)] = [
        ("customer", "SELECT * FROM shop.customer WHERE id NOT IN (SELECT id FROM exp_customer)"),
        ("address", "SELECT * FROM shop.address WHERE id NOT IN (SELECT id FROM exp_address)"),
        (
            "address kept columns",
            "SELECT id, postal_code, city, country FROM shop.address WHERE id IN (SELECT id FROM exp_address)"
        ),
        ("order", #"SELECT * FROM shop."order" WHERE id NOT IN (SELECT id FROM exp_order)"#),
        (
            "order kept columns",
            #"SELECT id, placed_at, status, shipping_address_id, total FROM shop."order" WHERE id IN (SELECT id FROM exp_order)"#
        ),
        ("order_line", "SELECT * FROM shop.order_line"),
        ("store", "SELECT * FROM shop.store"),
        ("product", "SELECT * FROM shop.product"),
        ("employee", "SELECT * FROM shop.employee"),
        ("wishlist_item", "SELECT * FROM shop.wishlist_item WHERE customer_id NOT IN (SELECT id FROM exp_customer)"),
        ("cart", "SELECT * FROM shop.cart WHERE id NOT IN (SELECT id FROM exp_cart)"),
        ("cart_item", "SELECT * FROM shop.cart_item WHERE cart_id NOT IN (SELECT id FROM exp_cart)"),
        (
            "newsletter_consent",
            "SELECT * FROM shop.newsletter_consent WHERE customer_id NOT IN (SELECT id FROM exp_customer)"
        ),
        ("newsletter_log", "SELECT * FROM shop.newsletter_log WHERE customer_ref NOT IN (SELECT id FROM exp_customer)"),
    ]

    /// Rows that must be gone: (table, expected count query before the run, rows left query after).
    static let deleted: [(table: String, rows: String)] = [
        ("shop.customer", "SELECT count(*) FROM shop.customer WHERE id IN (SELECT id FROM exp_customer)"),
        (
            "shop.wishlist_item",
            "SELECT count(*) FROM shop.wishlist_item WHERE customer_id IN (SELECT id FROM exp_customer)"
        ),
        ("shop.cart", "SELECT count(*) FROM shop.cart WHERE id IN (SELECT id FROM exp_cart)"),
        ("shop.cart_item", "SELECT count(*) FROM shop.cart_item WHERE cart_id IN (SELECT id FROM exp_cart)"),
        (
            "shop.newsletter_consent",
            "SELECT count(*) FROM shop.newsletter_consent WHERE customer_id IN (SELECT id FROM exp_customer)"
        ),
        (
            "shop.newsletter_log",
            "SELECT count(*) FROM shop.newsletter_log WHERE customer_ref IN (SELECT id FROM exp_customer)"
        ),
    ]

    static func untouchedChecksums(on connection: PostgresConnection) async throws -> [String: String] {
        var sums: [String: String] = [:]
        for (name, query) in untouched { sums[name] = try await checksum(query, on: connection) }
        return sums
    }
}

@Suite("Live runs against an independently written oracle")
struct EngineOracleTests {
    /// One batch, many, and many on three connections at once: shared rows are judged against every due subject
    /// either way, as the oracle does.
    @Test(arguments: [(100_000, 1), (97, 1), (97, 3)])
    func inactiveCustomersDoesExactlyWhatTheOracleSays(batchSize: Int, parallel: Int) async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = batchSize
                $0.policy.limits.parallel = parallel
            }
            try await execute(InactiveCustomersOracle.setup, on: connection)
            let expectedIDs = try await connection.query("SELECT id::text AS id FROM exp_customer").map {
                try $0.decode("id", as: String.self)
            }
            #expect(expectedIDs.count > 100)
            var expectedDeleted: [String: Int] = [:]
            for (table, query) in InactiveCustomersOracle.deleted {
                expectedDeleted[table] = try await scalar(query, as: Int.self, on: connection)
            }
            let expectedOrders = try await scalar("SELECT count(*) FROM exp_order", as: Int.self, on: connection)
            let expectedAddresses = try await scalar("SELECT count(*) FROM exp_address", as: Int.self, on: connection)
            #expect(expectedAddresses > 0)
            let before = try await InactiveCustomersOracle.untouchedChecksums(on: connection)

            let progress = ProgressLog()
            let opened = Counter()
            let report = try await DemoShop.engine(connection).run(
                [policy], options: DemoShop.options(.live, database: database, opened: opened),
                progress: { progress.append($0) })

            #expect(report.outcome == .done)
            #expect(opened.value == parallel - 1, "one connection per parallel batch beyond the run's own")
            #expect(try await AuditTrail.verify(on: connection).isIntact)
            let result = try #require(report.policies.first)
            #expect(result.failure == nil)
            #expect(result.expiring == expectedIDs.count)
            #expect(result.processed == expectedIDs.count)
            #expect(progress.all.last?.subjectsDone == expectedIDs.count)
            // No estimate of the time left before a few batches are done, one after.
            let unestimated = progress.all.filter { $0.estimatedRemaining == nil }.count
            #expect(unestimated == min(RunProgress.batchesBeforeEstimate - 1, progress.all.count))
            // Every other row is unchanged.
            let after = try await InactiveCustomersOracle.untouchedChecksums(on: connection)
            for (name, sum) in before { #expect(after[name] == sum, "rows of \(name) that must not change changed") }
            // Deleted rows are gone, and the report counts them.
            for (table, query) in InactiveCustomersOracle.deleted {
                #expect(try await scalar(query, as: Int.self, on: connection) == 0, "\(table) rows remain")
                let counted = result.tables.first { $0.table == table }?.deleted
                #expect(counted == expectedDeleted[table], "\(table) deleted")
            }
            // Orders are anonymized and detached; addresses anonymized; nothing else counted.
            #expect(result.tables.first { $0.table == "shop.order" }?.anonymized == expectedOrders)
            let anonymizedOrders = try await scalar(
                #"""
                SELECT count(*) FROM shop."order" o JOIN orig_order g USING (id)
                WHERE o.email LIKE 'anon-%@example.invalid' AND length(o.email) <= 40 AND o.email <> g.email
                  AND o.full_name = '[redacted]' AND o.phone IS NULL AND o.customer_id IS NULL
                  AND o.birth_date IS NOT DISTINCT FROM date_trunc('year', g.birth_date)::date
                """#, as: Int.self, on: connection)
            #expect(anonymizedOrders == expectedOrders)
            #expect(
                try await scalar(
                    #"SELECT count(DISTINCT email) FROM shop."order" WHERE email LIKE 'anon-%'"#, as: Int.self,
                    on: connection)
                    == expectedOrders)
            let anonymizedAddresses = try await scalar(
                """
                SELECT count(*) FROM shop.address a JOIN orig_address g USING (id)
                WHERE a.street = '[redacted]' AND a.phone IS NULL
                """, as: Int.self, on: connection)
            #expect(anonymizedAddresses == expectedAddresses)
            let addressCounts = try #require(result.tables.first { $0.table == "shop.address" })
            #expect(addressCounts.anonymized >= expectedAddresses)

            // The audit trail: one record per subject, with the digest recomputed from the test key.
            let digests = try await connection.query(
                "SELECT subject_digest FROM gallra.audit_subject"
            ).map { try $0.decode("subject_digest", as: String.self) }
            let expectedDigests = expectedIDs.map { DemoShop.digest(customer: $0) }
            #expect(digests.count == expectedIDs.count)
            #expect(Set(digests) == Set(expectedDigests))
            let audited = try await scalar(
                """
                SELECT coalesce(sum((c->>'rows')::int), 0) FROM gallra.audit_subject, jsonb_array_elements(counts) c
                WHERE c->>'table' = 'shop.wishlist_item' AND c->>'action' = 'deleted'
                """, as: Int.self, on: connection)
            #expect(audited == expectedDeleted["shop.wishlist_item"])
            let customerRecords = try await scalar(
                """
                SELECT count(*) FROM gallra.audit_subject, jsonb_array_elements(counts) c
                WHERE c->>'table' = 'shop.customer' AND c->>'action' = 'deleted' AND (c->>'rows')::int = 1
                """, as: Int.self, on: connection)
            #expect(customerRecords == expectedIDs.count)
            let head = try #require(report.auditHead)
            #expect(head.sequence == Int64(result.batches))
            #expect(try await scalar("SELECT outcome FROM gallra.run", as: String.self, on: connection) == "done")

            // A second run converges: nothing is due, nothing changes.
            let sums = try await checksumEverything(on: connection)
            let second = try await DemoShop.engine(connection).run([policy], options: DemoShop.options(.live))
            #expect(second.policies.first?.processed == 0)
            #expect(second.policies.first?.expiring == 0)
            var again = try await checksumEverything(on: connection)
            again["gallra.run"] = sums["gallra.run"]
            #expect(again == sums)
        }
    }

    @Test func anAnonymizeOnlyPolicyConvergesThroughProcessedSubjects() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("former-employees", on: connection)
            let expected = try await connection.query(
                """
                SELECT id::text AS id FROM shop.employee
                WHERE employment_ended_on < '\(DemoShop.asOfText)'::timestamptz - interval '2 years'
                """
            ).map { try $0.decode("id", as: String.self) }
            #expect(!expected.isEmpty)
            let kept = try await checksum(
                """
                SELECT * FROM shop.employee WHERE employment_ended_on IS NULL
                   OR employment_ended_on >= '\(DemoShop.asOfText)'::timestamptz - interval '2 years'
                """, on: connection)
            let report = try await DemoShop.engine(connection).run(
                [policy], options: DemoShop.options(.live, allowLarge: true))
            let result = try #require(report.policies.first)
            #expect(result.failure == nil)
            #expect(result.processed == expected.count)
            #expect(
                try await scalar(
                    """
                    SELECT count(*) FROM shop.employee WHERE id::text = ANY ($1::text[])
                      AND full_name = '[redacted]' AND email LIKE 'anon-%@example.invalid' AND national_id ~ '^[0-9a-f]{64}$'
                    """, [.text("{" + expected.joined(separator: ",") + "}")], as: Int.self, on: connection)
                    == expected.count)
            #expect(
                try await checksum(
                    """
                    SELECT * FROM shop.employee WHERE employment_ended_on IS NULL
                       OR employment_ended_on >= '\(DemoShop.asOfText)'::timestamptz - interval '2 years'
                    """, on: connection) == kept)
            #expect(
                try await scalar("SELECT count(*) FROM gallra.processed", as: Int.self, on: connection)
                    == expected.count)
            let sums = try await checksumEverything(on: connection)
            let second = try await DemoShop.engine(connection).run(
                [policy], options: DemoShop.options(.live, allowLarge: true))
            #expect(second.policies.first?.processed == 0)
            #expect(second.policies.first?.expiring == 0)
            var again = try await checksumEverything(on: connection)
            again["gallra.run"] = sums["gallra.run"]
            #expect(again == sums)
        }
    }
}
