import GallraTestSupport
import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import Testing

@Suite("Dry runs")
struct EngineDryRunTests {
    /// Sums of inserted, updated and deleted tuples over all tables, as the statistics collector reports them.
    static func tupleWrites(on connection: PostgresConnection) async throws -> Int {
        // A backend's statistics are flushed when it goes idle, at most once a second unless forced: force
        // this backend's (the engine runs on it) before reading a fresh snapshot. Other backends (psql
        // loading the shop) flushed theirs when they exited.
        try await connection.execute("SELECT pg_stat_force_next_flush()")
        try await connection.execute("SELECT pg_stat_clear_snapshot()")
        return try await scalar(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_all_tables",
            as: Int.self, on: connection)
    }

    @Test(arguments: [500, 100_000])
    func aDryRunPredictsTheLiveRunAndWritesNothing(batchSize: Int) async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            try await DemoShop.importConsent(database, on: connection)
            let policies = [
                try await DemoShop.policy("inactive-customers", on: connection) {
                    $0.policy.limits.batchSize = batchSize
                },
                try await DemoShop.policy("revoked-newsletter-consent", on: connection),
            ]
            let before = try await checksumEverything(on: connection)
            let writesBefore = try await Self.tupleWrites(on: connection)
            var options = DemoShop.options(.dry)
            options.showKeys = 5
            // No audit key: dry runs do not need one.
            let dry = try await DemoShop.engine(connection, key: false).run(policies, options: options)
            #expect(try await checksumEverything(on: connection) == before)
            #expect(try await Self.tupleWrites(on: connection) == writesBefore)
            #expect(dry.mode == .dry)
            #expect(dry.auditHead == nil)

            let planned = try #require(dry.policies.first)
            #expect(planned.failure == nil)
            #expect(planned.keys?.count == 5)
            #expect(planned.expiring > 0)
            #expect(planned.batches == (planned.expiring + batchSize - 1) / batchSize)
            // The draft expires by gallra's registry, filled from the shop's consent table: the customers who
            // withdrew consent 30 days or more before the run, counted here in that table.
            let draft = try #require(dry.policies.last)
            #expect(draft.state == .draft)
            #expect(draft.failure == nil)
            let withdrawn = """
                SELECT count(*) FILTER (WHERE NOT c.legal_hold) AS expiring, count(*) FILTER (WHERE c.legal_hold) AS held
                FROM shop.newsletter_consent AS n JOIN shop.customer AS c ON c.id = n.customer_id
                WHERE n.revoked_at <= '\(DemoShop.asOfText)'::timestamptz - interval '30 days'
                """
            let expiring = try await scalar("SELECT expiring FROM (\(withdrawn)) AS w", as: Int.self, on: connection)
            #expect(expiring > 0)
            #expect(draft.expiring == expiring)
            #expect(
                draft.exempted
                    == (try await scalar("SELECT held FROM (\(withdrawn)) AS w", as: Int.self, on: connection)))

            let live = try await DemoShop.engine(connection).run(
                Array(policies.prefix(1)), options: DemoShop.options(.live))
            let done = try #require(live.policies.first)
            #expect(done.expiring == planned.expiring)
            #expect(done.exempted == planned.exempted)
            #expect(done.processed == planned.processed)
            #expect(done.batches == planned.batches)
            // Whatever the batches: a row the subject points to that two due subjects in different batches use
            // is acted on (or retained) once, as the dry run counts it.
            for (predicted, happened) in zip(planned.steps, done.steps) {
                #expect(happened.rows == predicted.rows, "data[\(predicted.dataPoint)]")
                #expect(happened.retained == predicted.retained, "data[\(predicted.dataPoint)]")
            }
            #expect(done.tables == planned.tables)
        }
    }
}
