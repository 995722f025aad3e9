import GallraTestSupport
import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import Testing

@Suite("Live runs: guard, atomicity, concurrency")
struct EngineSafetyTests {
    static func dueIDs(on connection: PostgresConnection) async throws -> [Int64] {
        try await connection.query(
            """
            SELECT id FROM shop.customer
            WHERE last_seen_at < '\(DemoShop.asOfText)'::timestamptz - interval '1 year' AND NOT legal_hold ORDER BY id
            """
        ).map { try $0.decode("id", as: Int64.self) }
    }

    @Test func liveRunsNeedTheAuditKeyAndWriteNothingWithout() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection)
            let before = try await checksumEverything(on: connection)
            await #expect(throws: RunError.self) {
                try await DemoShop.engine(connection, key: false).run([policy], options: DemoShop.options(.live))
            }
            #expect(try await checksumEverything(on: connection) == before)
        }
    }

    @Test func theGuardRefusesALargePolicyUnlessAllowed() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.maxFraction = 0.05
            }
            let before = try await checksumEverything(on: connection)
            let refused = try await DemoShop.engine(connection).run([policy], options: DemoShop.options(.live))
            #expect(refused.outcome == .refused)
            let refusal = try #require(refused.policies.first?.refused)
            let due = try await Self.dueIDs(on: connection)
            #expect(refusal.expiring == due.count)
            #expect(refusal.tableRows == 2000)
            #expect(refusal.description.contains("--allow-large"))
            var after = try await checksumEverything(on: connection)
            #expect(after["gallra.run"] != before["gallra.run"])
            after["gallra.run"] = before["gallra.run"]
            #expect(after == before)
            #expect(try await scalar("SELECT outcome FROM gallra.run", as: String.self, on: connection) == "refused")

            let allowed = try await DemoShop.engine(connection).run(
                [policy], options: DemoShop.options(.live, allowLarge: true))
            #expect(allowed.outcome == .done)
            #expect(allowed.policies.first?.processed == due.count)
        }
    }

    @Test func aFailingBatchRollsBackWholeIsRetriedThenSkipped() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = 100
            }
            let due = try await Self.dueIDs(on: connection)
            let victim = due[150]  // in the second batch
            let batch = Array(due[100..<200])
            try await execute(
                [
                    """
                    CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF OLD.id = \(victim) THEN RAISE EXCEPTION 'test: customer refuses to go'; END IF;
                        RETURN OLD;
                    END $$
                    """,
                    "CREATE TRIGGER refuse BEFORE DELETE ON shop.customer FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse()",
                ], on: connection)
            let list = PostgresValue.text("{" + batch.map(String.init).joined(separator: ",") + "}")
            let batchRows = """
                SELECT (SELECT count(*) FROM shop.customer WHERE id = ANY ($1::bigint[]))
                     + (SELECT count(*) FROM shop.wishlist_item WHERE customer_id = ANY ($1::bigint[]))
                     + (SELECT count(*) FROM shop."order" WHERE customer_id = ANY ($1::bigint[]))
                     + (SELECT count(*) FROM shop.newsletter_log WHERE customer_ref = ANY ($1::bigint[]))
                """
            let rowsBefore = try await scalar(batchRows, [list], as: Int.self, on: connection)
            let ordersBefore = try await checksum(
                #"SELECT * FROM shop."order" WHERE customer_id = ANY ('\#(String(describing: list.string!))'::bigint[])"#,
                on: connection)

            let report = try await DemoShop.engine(connection).run([policy], options: DemoShop.options(.live))
            #expect(report.outcome == .partial)
            let result = try #require(report.policies.first)
            #expect(result.failure == nil)
            #expect(result.skippedBatches.count == 1)
            #expect(result.skippedBatches.first?.batch == 2)
            #expect(result.skippedBatches.first?.attempts == 4)
            #expect(result.skippedBatches.first?.subjects == 100)
            #expect(result.skippedBatches.first?.sqlState == "P0001")
            #expect(result.processed == due.count - 100)
            // The skipped batch's subjects are untouched: rows, orders, and no audit record.
            #expect(try await scalar(batchRows, [list], as: Int.self, on: connection) == rowsBefore)
            #expect(
                try await checksum(
                    #"SELECT * FROM shop."order" WHERE customer_id = ANY ('\#(String(describing: list.string!))'::bigint[])"#,
                    on: connection) == ordersBefore)
            let digests = Set(
                try await connection.query("SELECT subject_digest FROM gallra.audit_subject").map {
                    try $0.decode("subject_digest", as: String.self)
                })
            #expect(digests.count == due.count - 100)
            for id in batch {
                let digest = Digest.hex(
                    Digest.hmacSHA256(key: DemoShop.keyBytes, message: Array("shop.customer:\(id)".utf8)))
                #expect(!digests.contains(digest))
            }
            #expect(
                try await scalar("SELECT count(*) FROM gallra.audit_block", as: Int.self, on: connection)
                    == result.batches)
            #expect(try await scalar("SELECT outcome FROM gallra.run", as: String.self, on: connection) == "partial")
        }
    }

    @Test func aLockedSubjectIsSkippedAndALaterRunProcessesIt() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection)
            let due = try await Self.dueIDs(on: connection)
            let locked = due[3]
            let holder = try await database.connect()
            try await holder.execute("BEGIN")
            try await holder.execute("SELECT FROM shop.customer WHERE id = $1 FOR UPDATE", [.int64(locked)])
            let first = try await DemoShop.engine(connection).run([policy], options: DemoShop.options(.live))
            #expect(first.policies.first?.processed == due.count - 1)
            #expect(first.policies.first?.stillDue == 1)
            #expect(first.outcome == .partial, "a subject left due: run again later")
            #expect(
                try await scalar(
                    "SELECT count(*) FROM shop.customer WHERE id = $1", [.int64(locked)], as: Int.self, on: connection)
                    == 1)
            try await holder.execute("ROLLBACK")
            await holder.close()
            let second = try await DemoShop.engine(connection).run([policy], options: DemoShop.options(.live))
            #expect(second.policies.first?.processed == 1)
            #expect(second.outcome == .done)
            #expect(
                try await scalar(
                    "SELECT count(*) FROM shop.customer WHERE id = $1", [.int64(locked)], as: Int.self, on: connection)
                    == 0)
        }
    }

    @Test(arguments: ["inactive-customers", "former-employees"])
    func twoConcurrentRunsNeverProcessASubjectTwice(policyName: String) async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection, customers: 3000)
            let policy = try await DemoShop.policy(policyName, on: connection) {
                $0.policy.limits.batchSize = 20
            }
            let other = try await database.connect()
            async let first = DemoShop.engine(connection).run(
                [policy], options: DemoShop.options(.live, allowLarge: true))
            async let second = DemoShop.engine(other).run(
                [policy], options: DemoShop.options(.live, allowLarge: true))
            let reports = try await [first, second]
            await other.close()
            let processed = reports.compactMap { $0.policies.first?.processed }.reduce(0, +)
            let expiring = reports.compactMap { $0.policies.first?.expiring }.max() ?? 0
            #expect(processed == expiring)
            #expect(reports.allSatisfy { $0.policies.first?.failure == nil })
            #expect(
                try await scalar("SELECT count(*) FROM gallra.audit_subject", as: Int.self, on: connection) == processed
            )
            #expect(
                try await scalar(
                    "SELECT count(DISTINCT subject_digest) FROM gallra.audit_subject", as: Int.self, on: connection)
                    == processed)
            let again = try await DemoShop.engine(connection).run(
                [policy], options: DemoShop.options(.live, allowLarge: true))
            #expect(again.policies.first?.processed == 0)
        }
    }

    @Test func theRunnerLockAdmitsOneRunner() async throws {
        try await TestDatabase.with { database, connection in
            let other = try await database.connect()
            #expect(try await Engine.tryAcquireRunnerLock(on: connection))
            #expect(try await !Engine.tryAcquireRunnerLock(on: other))
            try await Engine.releaseRunnerLock(on: connection)
            #expect(try await Engine.tryAcquireRunnerLock(on: other))
            await other.close()
        }
    }
}
