import GallraTestSupport
import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import Testing

/// `gallra.processed` and `gallra.processed_row` stay bounded by the live rows they name, and never at the cost of
/// processing a subject twice.
@Suite("Pruning of gallra.processed and processed_row")
struct ProcessedPruningTests {
    static let schema = """
        CREATE SCHEMA shop;
        CREATE TABLE shop.address (id bigint PRIMARY KEY, street text NOT NULL, phone text);
        CREATE TABLE shop.customer (
            id bigint PRIMARY KEY,
            email text,
            full_name text NOT NULL,
            last_seen_at timestamptz,
            address_id bigint REFERENCES shop.address (id)
        );
        """

    static let policy = """
        policy: year-of-runs
        state: active
        subject: { table: shop.customer, key: id }
        expires: { inactive_for: 90 days, activity: last_seen_at }
        data:
          - { table: shop.address, anonymize: { phone: hash, street: redact } }
          - { table: shop.customer, anonymize: { email: hash, full_name: redact } }
        limits: { batch_size: 10, max_fraction: 1 }
        """

    /// A small shop over a year of daily runs. Each day three customers sign up (ids 3d+1 to 3d+3, each with an
    /// address); two of them come back every week, the third (3d+3) never does and expires 90 days later. The
    /// shop deletes the even ones among the anonymized customers, with their addresses, a month after; every 60
    /// days some anonymized customers are seen again and go inactive again later (their entry must keep them).
    ///
    /// Every 30 days and at the end, the oracle (hand-written SQL over the shop's rows) checks that the entries
    /// are exactly those of live anonymized customers and their live addresses; at the end, the audit trail holds
    /// one record for each customer that ever expired, and no more.
    @Test func aYearOfDailyRunsKeepsTheTablesBoundedAndProcessesEachSubjectOnce() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.schema, into: database, on: connection)
            let policy = try await EdgeCase.policy(Self.policy, on: connection)
            let engine = try DemoShop.engine(connection)
            let days = 365
            var pruned = 0
            for day in 0..<days {
                let asOf = DemoShop.asOf.addingTimeInterval(Double(day) * 86_400)
                let today = PostgresTimestamp(asOf)
                try await connection.execute(
                    """
                    INSERT INTO shop.address (id, street, phone)
                    SELECT 3 * $1::bigint + n, 'Street ' || n, '+46 70 ' || (3 * $1::bigint + n) FROM generate_series(1, 3) AS n
                    """, [.int64(Int64(day))])
                try await connection.execute(
                    """
                    INSERT INTO shop.customer (id, email, full_name, last_seen_at, address_id)
                    SELECT 3 * $1::bigint + n, 'c' || (3 * $1::bigint + n) || '@example.com', 'Customer',
                           $2::timestamptz - interval '1 hour', 3 * $1::bigint + n
                    FROM generate_series(1, 3) AS n
                    """, [.int64(Int64(day)), .timestamptz(today)])
                // The regulars come back once a week.
                try await connection.execute(
                    """
                    UPDATE shop.customer SET last_seen_at = $2::timestamptz - interval '1 hour'
                    WHERE id % 3 <> 0 AND id % 7 = $1::bigint % 7
                    """, [.int64(Int64(day)), .timestamptz(today)])
                if day % 60 == 59 {
                    // Some anonymized customers are seen again: the rule stops holding, and holds again in 90 days.
                    try await connection.execute(
                        """
                        UPDATE shop.customer SET last_seen_at = $1::timestamptz - interval '1 hour'
                        WHERE full_name = '[redacted]' AND id % 5 = 0
                        """, [.timestamptz(today)])
                }
                // The shop deletes even anonymized customers a month after they were anonymized, and their address.
                try await connection.execute(
                    """
                    WITH gone AS (
                        DELETE FROM shop.customer
                        WHERE full_name = '[redacted]' AND id % 2 = 0
                          AND last_seen_at < $1::timestamptz - interval '120 days'
                        RETURNING address_id)
                    DELETE FROM shop.address WHERE id IN (SELECT address_id FROM gone)
                    """, [.timestamptz(today)])

                var options = DemoShop.options(.live)
                options.asOf = asOf
                let report = try await engine.run([policy], options: options)
                #expect(report.outcome == .done, "day \(day)")
                let policyReport = try #require(report.policies.first)
                #expect(policyReport.failure == nil, "day \(day): \(policyReport.failure?.rawValue ?? "")")
                pruned += policyReport.pruned ?? 0

                if day % 30 == 29 || day == days - 1 {
                    try await Self.expectEntriesOfLiveRowsOnly(day: day, on: connection)
                }
            }

            // Customer 3d+3 expired on day d + 90 for d = 0 ... 274: 275 customers, each audited once.
            let expired = (0...(days - 1 - 90)).map { DemoShop.digest(customer: 3 * $0 + 3) }
            let records = try await connection.query(
                "SELECT subject_digest, count(*) AS n FROM gallra.audit_subject GROUP BY subject_digest")
            var audited: [String: Int] = [:]
            for row in records {
                audited[try row.decode("subject_digest", as: String.self)] = try row.decode("n", as: Int.self)
            }
            #expect(Set(audited.keys) == Set(expired))
            #expect(audited.values.allSatisfy { $0 == 1 }, "a subject was processed twice")

            // Without the pruning the tables would hold an entry for every customer that ever expired.
            let deleted = try await scalar(
                "SELECT 275 - count(*) FROM shop.customer WHERE full_name = '[redacted]'", as: Int.self,
                on: connection)
            #expect(deleted > 60)
            #expect(pruned == 2 * deleted, "an entry of processed and one of processed_row per deleted customer")
            #expect(
                try await scalar("SELECT count(*) FROM gallra.processed", as: Int.self, on: connection)
                    == 275 - deleted)
        }
    }

    /// The oracle: `processed` holds exactly the live anonymized customers, `processed_row` exactly their
    /// addresses, so both are bounded by the live rows.
    static func expectEntriesOfLiveRowsOnly(day: Int, on connection: PostgresConnection) async throws {
        let processed = try await keys(
            "SELECT subject_key AS k FROM gallra.processed WHERE policy = 'year-of-runs' ORDER BY 1",
            on: connection)
        let anonymized = try await keys(
            "SELECT id::text AS k FROM shop.customer WHERE full_name = '[redacted]' ORDER BY id::text COLLATE \"C\"",
            on: connection)
        #expect(processed == anonymized, "day \(day): gallra.processed")
        let rows = try await keys(
            "SELECT row_key AS k FROM gallra.processed_row WHERE policy = 'year-of-runs' ORDER BY 1",
            on: connection)
        let addresses = try await keys(
            """
            SELECT jsonb_build_object('id', a.id)::text AS k FROM shop.address AS a
            WHERE a.street = '[redacted]' ORDER BY jsonb_build_object('id', a.id)::text COLLATE "C"
            """, on: connection)
        #expect(rows == addresses, "day \(day): gallra.processed_row")
        let live = try await scalar("SELECT count(*) FROM shop.customer", as: Int.self, on: connection)
        #expect(processed.count <= live / 2, "day \(day): \(processed.count) entries for \(live) customers")
    }

    /// An on-request policy has no scheduled runs: the sweep of due requests that erased someone prunes its entries.
    @Test func theSweepOfDueRequestsPrunesTheOnRequestPolicies() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(
                Self.schema + """
                    INSERT INTO shop.customer SELECT g, 'c' || g || '@example.com', 'Customer', now(), NULL
                    FROM generate_series(1, 3) AS g;
                    """, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: erase-on-request
                state: active
                subject: { table: shop.customer, key: id }
                expires: on_request
                data:
                  - { table: shop.customer, anonymize: { email: hash, full_name: redact } }
                """, on: connection)
            _ = try await PolicyStore(connection: connection).apply([(policy.resolved.policy, source: "request.yaml")])
            let engine = try DemoShop.engine(connection)
            for customer in ["1", "2"] {
                _ = try await ErasureQueue.request(
                    table: "shop.customer", key: customer, reason: "ticket", after: nil, on: connection)
            }
            #expect(try await engine.processErasureRequests(.due).map(\.status) == [.done, .done])
            #expect(
                try await keys("SELECT subject_key AS k FROM gallra.processed ORDER BY 1", on: connection) == [
                    "1", "2",
                ])

            // The shop deletes customer 1; the next sweep that erases someone (3) prunes its entry.
            try await execute(["DELETE FROM shop.customer WHERE id = 1"], on: connection)
            _ = try await ErasureQueue.request(
                table: "shop.customer", key: "3", reason: "ticket", after: nil, on: connection)
            #expect(try await engine.processErasureRequests(.due).map(\.status) == [.done])
            #expect(
                try await keys("SELECT subject_key AS k FROM gallra.processed ORDER BY 1", on: connection) == [
                    "2", "3",
                ])
        }
    }

    /// A policy whose stored versions name two subject tables keeps its `processed` entries: a key gone from one
    /// table may be a subject of the other.
    @Test func entriesOfAPolicyThatChangedItsSubjectTableStay() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(
                Self.schema + """
                    CREATE TABLE shop.member (id bigint PRIMARY KEY, email text, full_name text NOT NULL,
                        last_seen_at timestamptz);
                    INSERT INTO shop.member VALUES (1, 'm1@example.com', 'Member', '2024-01-01');
                    INSERT INTO shop.customer VALUES (2, 'c2@example.com', 'Customer', '2024-01-01', NULL);
                    """, into: database, on: connection)
            let policy = try await EdgeCase.policy(Self.policy, on: connection)
            let member = try await EdgeCase.policy(
                """
                policy: year-of-runs
                state: active
                subject: { table: shop.member, key: id }
                expires: { inactive_for: 90 days, activity: last_seen_at }
                data:
                  - { table: shop.member, anonymize: { email: hash, full_name: redact } }
                limits: { max_fraction: 1 }
                """, on: connection)
            let store = PolicyStore(connection: connection)
            _ = try await store.apply([(member.resolved.policy, source: "member.yaml")])
            _ = try await store.apply([(policy.resolved.policy, source: "customer.yaml")])
            let engine = try DemoShop.engine(connection)

            // Member 1 processed under the first version; customer 2 under the second, whose table has no row 1.
            _ = try await engine.run([member], options: DemoShop.options(.live))
            let report = try await engine.run([policy], options: DemoShop.options(.live))
            #expect(report.outcome == .done)
            #expect(report.policies.first?.processed == 1)
            #expect(report.policies.first?.pruned == nil)
            #expect(
                try await keys("SELECT subject_key AS k FROM gallra.processed ORDER BY 1", on: connection) == [
                    "1", "2",
                ])
        }
    }
}
