import Foundation
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

@testable import GallraEngine

// `consent: gallra`: customers expire by their latest event in gallra's consent registry. The run is at
// DemoShop.asOf (2026-11-29 00:00 UTC) with 30 days of grace, so a revocation expires a customer when it was
// recorded at or before 2026-10-30 00:00 UTC and nothing was recorded after it.

@Suite("Expiry by gallra's consent registry, against a hand-written oracle")
struct ConsentExpiryTests {
    static let schema = """
        CREATE SCHEMA app;
        CREATE TABLE app.customer (id bigint PRIMARY KEY, email text NOT NULL);
        INSERT INTO app.customer VALUES
            (1, 'granted-only@example.com'),
            (2, 'revoked-recently@example.com'),
            (3, 'revoked-long-ago@example.com'),
            (4, 'granted-again@example.com'),
            (5, 'never-asked@example.com'),
            (6, 'revoked-at-cutoff@example.com'),
            (7, 'revoked-after-cutoff@example.com'),
            (8, 'revoked-other-policy@example.com'),
            (9, 'revoked-other-table@example.com');
        """

    /// The events, written as the table's owner with the times they would have been recorded at (the functions
    /// stamp the clock, and the table refuses updates). Each subject's events are numbered 1, 2, ...
    static let events = """
        INSERT INTO gallra.consent_event
            (subject_table, subject_key, policy, ordinal, policy_version, event, recorded_at, source)
        VALUES
            ('app.customer', '1', 'newsletter', 1, 1, 'granted', '2025-01-01 10:00+00', 'web'),
            ('app.customer', '2', 'newsletter', 1, 1, 'granted', '2025-01-01 10:00+00', 'web'),
            ('app.customer', '2', 'newsletter', 2, 1, 'revoked', '2026-11-01 10:00+00', 'web'),
            ('app.customer', '3', 'newsletter', 1, 1, 'granted', '2025-01-01 10:00+00', 'web'),
            ('app.customer', '3', 'newsletter', 2, 1, 'revoked', '2026-06-01 10:00+00', 'store'),
            ('app.customer', '4', 'newsletter', 1, 1, 'granted', '2025-01-01 10:00+00', 'web'),
            ('app.customer', '4', 'newsletter', 2, 1, 'revoked', '2026-03-01 10:00+00', 'web'),
            ('app.customer', '4', 'newsletter', 3, 1, 'granted', '2026-04-01 10:00+00', 'club'),
            ('app.customer', '6', 'newsletter', 1, 1, 'granted', '2025-01-01 10:00+00', 'web'),
            ('app.customer', '6', 'newsletter', 2, 1, 'revoked', '2026-10-30 00:00+00', 'web'),
            ('app.customer', '7', 'newsletter', 1, 1, 'granted', '2025-01-01 10:00+00', 'web'),
            ('app.customer', '7', 'newsletter', 2, 1, 'revoked', '2026-10-30 00:00:01+00', 'web'),
            ('app.customer', '8', 'sms', 1, 1, 'granted', '2025-01-01 10:00+00', 'web'),
            ('app.customer', '8', 'sms', 2, 1, 'revoked', '2026-01-01 10:00+00', 'web'),
            ('shop.customer', '9', 'newsletter', 1, 1, 'granted', '2025-01-01 10:00+00', 'web'),
            ('shop.customer', '9', 'newsletter', 2, 1, 'revoked', '2026-01-01 10:00+00', 'web')
        """

    static let policy = """
        policy: newsletter
        state: active
        legal_basis: consent
        subject: { table: app.customer, key: id }
        expires: { consent_revoked: 30 days, consent: gallra }
        data:
          - { table: app.customer, anonymize: { email: redact } }
        limits: { max_fraction: 1 }
        """

    @Test func revokedLongerAgoThanTheGracePeriodExpiresAndNothingElseDoes() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.schema, into: database, on: connection)
            try await execute([Self.events], on: connection)
            let policy = try await EdgeCase.policy(Self.policy, on: connection)

            // 3 revoked in June; 6 revoked exactly at the cutoff. 1 only granted, 2 revoked within the grace
            // period, 4 granted again, 5 never asked, 7 revoked a second after the cutoff, 8 revoked another
            // policy, 9 is another table's subject.
            let oracle = TableOracle(
                table: "app.customer", key: "t.id", anonymized: ["3", "6"], columns: ["email"])
            // The same answer from the registry by a query of its own: each subject's latest event.
            let latest = try await keys(
                """
                SELECT c.id::text AS k FROM app.customer AS c
                JOIN (SELECT DISTINCT ON (subject_key) subject_key, event, recorded_at
                      FROM gallra.consent_event
                      WHERE subject_table = 'app.customer' AND policy = 'newsletter'
                      ORDER BY subject_key, ordinal DESC) AS e ON e.subject_key = c.id::text
                WHERE e.event = 'revoked' AND e.recorded_at <= timestamptz '2026-11-29 00:00+00' - interval '30 days'
                ORDER BY c.id
                """, on: connection)
            #expect(latest == oracle.anonymized)
            let before = try await oracle.snapshot(on: connection)

            let (dry, live) = try await EdgeCase.run(policy, on: connection)

            EdgeCase.expectSameNumbers(dry: dry, live: live)
            #expect(dry.expiring == 2)
            #expect(live.expiring == 2)
            #expect(live.processed == 2)
            // Their consent events go with them: two each.
            #expect(live.consentEvents == 4)
            #expect(
                try await keys(
                    "SELECT DISTINCT subject_key AS k FROM gallra.consent_event WHERE subject_key IN ('3', '6')",
                    on: connection) == [])
            oracle.expectCounted(in: live)
            try await oracle.expectDone(since: before, on: connection)
            let redacted = try await keys(
                "SELECT id::text AS k FROM app.customer WHERE email = '[redacted]' ORDER BY id", on: connection)
            #expect(redacted == ["3", "6"])
        }
    }

    @Test func eachSubjectIsOneProbeOfTheRegistrysUniqueIndex() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(Self.schema, into: database, on: connection)
            // Enough events that reading them all would show; sequential scans are priced out so that a plan
            // without the index means the statement cannot use it.
            try await execute(
                [
                    """
                    INSERT INTO gallra.consent_event (subject_table, subject_key, policy, ordinal, policy_version, event)
                    SELECT 'app.customer', (n / 2)::text, 'newsletter', n % 2 + 1, 1,
                           CASE n % 2 WHEN 0 THEN 'granted' ELSE 'revoked' END
                    FROM generate_series(0, 19999) AS n
                    """,
                    "ANALYZE gallra.consent_event",
                    "SET enable_seqscan = off",
                ], on: connection)
            let policy = try await EdgeCase.policy(Self.policy, on: connection)
            let statement = try Planner(policy.resolved).pickBatch(afterKey: false)
            let values: [PostgresValue] = statement.parameters.map { parameter in
                switch parameter {
                case .asOf: .text(DemoShop.asOfText)
                case .interval(let text): .text(text)
                case .text(let text): text.map { .text($0) } ?? .null
                case .policyName: .text("newsletter")
                case .limit: .int64(100)
                default: .null
                }
            }
            let plan = try await connection.query("EXPLAIN " + statement.sql, values).map {
                try $0.decode("QUERY PLAN", as: String.self)
            }.joined(separator: "\n")
            #expect(plan.contains("Index Scan Backward using consent_event_one_history"), "\(plan)")
            #expect(!plan.contains("Seq Scan on consent_event"), "\(plan)")
        }
    }
}
