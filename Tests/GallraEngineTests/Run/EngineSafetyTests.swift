import GallraTestSupport
import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import Logging
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

    /// An error that is not the batch's (here a privilege) fails the policy on whichever connection meets it; the
    /// other connections finish the batch they are in and start no other. Every due subject is then either done
    /// whole and audited, or untouched.
    @Test func aPolicyFailingOnOneConnectionLeavesEveryBatchWholeOnTheOthers() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = 50
                $0.policy.limits.parallel = 3
            }
            let due = try await Self.dueIDs(on: connection)
            let victim = due[400]
            try await execute(
                [
                    """
                    CREATE FUNCTION public.forbid() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF OLD.id = \(victim) THEN
                            RAISE EXCEPTION 'test: not allowed' USING ERRCODE = 'insufficient_privilege';
                        END IF;
                        RETURN OLD;
                    END $$
                    """,
                    "CREATE TRIGGER forbid BEFORE DELETE ON shop.customer FOR EACH ROW EXECUTE FUNCTION public.forbid()",
                ], on: connection)
            let dueList = PostgresValue.text("{" + due.map(String.init).joined(separator: ",") + "}")
            let wishlistsBefore = try await scalar(
                "SELECT count(*) FROM shop.wishlist_item WHERE customer_id = ANY ($1::bigint[])", [dueList],
                as: Int.self, on: connection)

            let report = try await DemoShop.engine(connection).run(
                [policy], options: DemoShop.options(.live, database: database))
            #expect(report.outcome == .failed)
            let result = try #require(report.policies.first)
            #expect(result.failure?.rawValue.contains("not allowed") == true)
            #expect(result.processed > 0 && result.processed < due.count)

            // The deleted subjects are exactly the audited ones, each deleted with all its rows.
            let deleted = try await connection.query(
                "SELECT k AS id FROM unnest($1::bigint[]) AS k WHERE NOT EXISTS (SELECT FROM shop.customer WHERE id = k)",
                [dueList]
            ).map { try $0.decode("id", as: Int64.self) }
            #expect(deleted.count == result.processed)
            #expect(!deleted.contains(victim))
            #expect(
                try await DemoShop.auditedDigests(on: connection) == Set(deleted.map { DemoShop.digest(customer: $0) }))
            let wishlistsLeft = try await scalar(
                "SELECT count(*) FROM shop.wishlist_item WHERE customer_id = ANY ($1::bigint[])", [dueList],
                as: Int.self, on: connection)
            #expect(
                wishlistsBefore - wishlistsLeft == result.tables.first { $0.table == "shop.wishlist_item" }?.deleted)
            #expect(
                try await scalar(
                    "SELECT count(*) FROM shop.wishlist_item WHERE customer_id <> ALL ($1::bigint[]) AND customer_id = ANY ($2::bigint[])",
                    [.text("{" + deleted.map(String.init).joined(separator: ",") + "}"), dueList], as: Int.self,
                    on: connection) == wishlistsLeft)
            #expect(try await AuditTrail.verify(on: connection).isIntact)
            #expect(
                try await scalar("SELECT count(*) FROM gallra.audit_block", as: Int.self, on: connection)
                    == result.batches)
            #expect(try await scalar("SELECT outcome FROM gallra.run", as: String.self, on: connection) == "failed")
        }
    }

    /// A server that refuses the extra connections (here: none listens where they go) leaves the policy to the run's
    /// own connection, with a warning that says so.
    @Test func parallelBatchesGoOnWithTheConnectionsThatOpen() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = 100
                $0.policy.limits.parallel = 4
            }
            let due = try await Self.dueIDs(on: connection)
            var options = DemoShop.options(.live)
            let attempts = Counter()
            options.connect = {
                attempts.increment()
                return try await PostgresConnection.connect(
                    "host=/nonexistent-gallra-socket-dir port=1 connect_timeout=2")
            }
            let log = LogRecorder()
            let report = try await Engine(connection: connection, auditKey: try DemoShop.auditKey(), logger: log.logger)
                .run([policy], options: options)
            #expect(report.outcome == .done)
            #expect(report.policies.first?.processed == due.count)
            #expect(attempts.value == 1, "the first refusal ends the attempts")
            let warning = try #require(log.messages(at: .warning).first)
            #expect(
                warning.contains(
                    "cannot open another connection for parallel batches (limits.parallel 4); going on with 1"))
            #expect(try await AuditTrail.verify(on: connection).isIntact)
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

    /// While a batch holds its rows, the live shop can still place an order to an address the batch anonymizes
    /// (the address is locked no more strongly than its update needs), while an order for a customer the batch
    /// deletes waits for the batch, and then fails its foreign key check rather than outlive its customer.
    @Test func theLiveShopCanReferenceRowsABatchAnonymizesButNotRowsItDeletes() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = 5000
            }
            let due = try await connection.query(
                """
                SELECT id, address_id FROM shop.customer
                WHERE last_seen_at < '\(DemoShop.asOfText)'::timestamptz - interval '1 year' AND NOT legal_hold
                  AND address_id IS NOT NULL
                ORDER BY id LIMIT 1
                """)
            let subject = try #require(try due.first?.decode("id", as: Int64.self))
            let address = try #require(try due.first?.decode("address_id", as: Int64.self))
            // The batch sleeps in its order step, after it has locked the subjects and their addresses.
            try await execute(
                [
                    """
                    CREATE FUNCTION pg_temp.linger() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$
                    """,
                    """
                    CREATE TRIGGER linger BEFORE UPDATE ON shop."order"
                    FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.linger()
                    """,
                ], on: connection)
            let shop = try await database.connect()
            async let run = DemoShop.engine(connection).run([policy], options: DemoShop.options(.live))
            var lingering = false
            for _ in 0..<100 where !lingering {
                try await Task.sleep(for: .milliseconds(50))
                lingering =
                    try await scalar(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()",
                        as: Int.self, on: shop) == 1
            }
            #expect(lingering)
            try await shop.execute("SET lock_timeout = '500ms'")
            let order = """
                INSERT INTO shop."order" (customer_id, placed_at, status, email, full_name, phone, shipping_address_id, total)
                SELECT c.id, now(), 'placed', c.email, c.full_name, c.phone, $2, 0 FROM shop.customer c WHERE c.id = $1
                """
            let active = try await scalar(
                """
                SELECT id FROM shop.customer
                WHERE last_seen_at >= '\(DemoShop.asOfText)'::timestamptz - interval '1 year' ORDER BY id LIMIT 1
                """, as: Int64.self, on: shop)
            let started = ContinuousClock.now
            #expect(try await shop.execute(order, [.int64(active), .int64(address)]) == 1)
            #expect(ContinuousClock.now - started < .milliseconds(400))
            await #expect {
                try await shop.execute(order, [.int64(subject), .int64(address)])
            } throws: { ($0 as? PostgresError)?.sqlState == "55P03" }
            let report = try await run
            #expect(report.policies.first?.failure == nil)
            await shop.close()
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

extension Engine {
    /// Releases the runner lock (the product holds it until its connection closes).
    static func releaseRunnerLock(on connection: PostgresConnection) async throws {
        try await connection.execute("SELECT pg_advisory_unlock($1)", [.int64(runnerLockKey)])
    }
}
