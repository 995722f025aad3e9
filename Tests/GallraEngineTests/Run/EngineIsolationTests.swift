import GallraTestSupport
import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import Logging
import Testing

/// One subject the database refuses, or whose row another transaction holds, costs that subject alone: its batch
/// leaves it and goes on with the others, at once.
@Suite("Live runs: a refused or locked subject is left alone")
struct EngineIsolationTests {
    /// A due customer with orders, in the second batch of 100.
    static func victimWithOrders(_ due: [Int64], on connection: PostgresConnection) async throws -> (Int64, Int64) {
        let batch = "{" + due[100..<200].map(String.init).joined(separator: ",") + "}"
        let row = try #require(
            try await connection.query(
                #"SELECT customer_id, min(id) AS "order" FROM shop."order" WHERE customer_id = ANY ($1::bigint[]) GROUP BY customer_id ORDER BY customer_id OFFSET 20 LIMIT 1"#,
                [.text(batch)]
            ).first)
        return (try row.decode("customer_id", as: Int64.self), try row.decode("order", as: Int64.self))
    }

    /// The customer's own rows and the orders, for "untouched".
    static func rows(of customer: Int64, on connection: PostgresConnection) async throws -> String {
        try await checksum(
            """
            SELECT 'c', to_jsonb(c)::text FROM shop.customer AS c WHERE id = \(customer)
            UNION ALL SELECT 'w', to_jsonb(w)::text FROM shop.wishlist_item AS w WHERE customer_id = \(customer)
            UNION ALL SELECT 'o', to_jsonb(o)::text FROM shop."order" AS o WHERE customer_id = \(customer)
            UNION ALL SELECT 'n', to_jsonb(n)::text FROM shop.newsletter_log AS n WHERE customer_ref = \(customer)
            """, on: connection)
    }

    /// What every left-subject test checks: exactly `victim` left, every other due subject processed and audited,
    /// the victim untouched and unaudited, the run partial (stored by digest only), and a rerun takes the victim
    /// once the cause is gone.
    static func expectOnlyLeft(
        _ victim: Int64, report: RunReport, due: [Int64], untouched: String, on connection: PostgresConnection
    ) async throws -> LeftSubject {
        #expect(report.outcome == .partial)
        let result = try #require(report.policies.first)
        #expect(result.failure == nil)
        #expect(result.skippedBatches.isEmpty)
        let left = try #require(result.leftSubjects)
        #expect(left.map(\.key) == ["\(victim)"])
        #expect(left.map(\.digest) == [DemoShop.digest(customer: victim)])
        #expect(result.processed == due.count - 1)
        #expect(result.stillDue == 1)
        #expect(try await rows(of: victim, on: connection) == untouched)
        #expect(
            try await DemoShop.auditedDigests(on: connection)
                == Set(due.filter { $0 != victim }.map { DemoShop.digest(customer: $0) }))
        #expect(try await AuditTrail.verify(on: connection).isIntact)
        #expect(
            try await scalar("SELECT count(*) FROM gallra.audit_block", as: Int.self, on: connection)
                == result.batches)
        #expect(try await scalar("SELECT outcome FROM gallra.run", as: String.self, on: connection) == "partial")
        // gallra.run names the subject by its digest: no key, no server message.
        let stored = try await scalar(
            "SELECT (counts -> 0 -> 'left_subjects' -> 0)::text FROM gallra.run", as: String.self, on: connection)
        #expect(stored.contains(DemoShop.digest(customer: victim)))
        #expect(!stored.contains("\"key\"") && !stored.contains("\"message\""))
        return try #require(left.first)
    }

    @Test(arguments: [1, 3])
    func aRefusingTriggerLeavesExactlyItsSubjectWithoutRetrying(parallel: Int) async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = 100
                $0.policy.limits.parallel = parallel
            }
            let due = try await EngineSafetyTests.dueIDs(on: connection)
            let victim = due[150]
            try await execute(
                [
                    """
                    CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF OLD.id = \(victim) THEN RAISE EXCEPTION 'test: customer refuses to go'; END IF;
                        RETURN OLD;
                    END $$
                    """,
                    "CREATE TRIGGER refuse BEFORE DELETE ON shop.customer FOR EACH ROW EXECUTE FUNCTION public.refuse()",
                ], on: connection)
            let untouched = try await Self.rows(of: victim, on: connection)
            let recorder = LogRecorder()
            var options = DemoShop.options(.live, database: database)
            // A retry would wait at least this long: the run must not.
            options.retryBackoff = .seconds(60)
            let started = ContinuousClock.now
            let engine = Engine(connection: connection, auditKey: try DemoShop.auditKey(), logger: recorder.logger)
            let report = try await engine.run([policy], options: options)
            #expect(ContinuousClock.now - started < .seconds(60))
            let left = try await Self.expectOnlyLeft(
                victim, report: report, due: due, untouched: untouched, on: connection)
            #expect(left.reason == .refused)
            #expect(left.sqlState == "P0001")
            #expect(left.message?.contains("test: customer refuses to go") == true)

            // The journal gets the digest, never the key.
            let entries = recorder.all.filter { $0.metadata["MESSAGE_ID"] == JournalEvent.subjectLeft.id }
            #expect(entries.count == 1)
            let entry = try #require(entries.first)
            #expect(entry.metadata["subject.digest"] == DemoShop.digest(customer: victim))
            #expect(entry.metadata["sqlstate"] == "P0001")
            #expect(entry.metadata["policy"] == "inactive-customers")
            // (A digest or the run's id may hold the key's digits by chance: they are left out of the search.)
            let digest = DemoShop.digest(customer: victim)
            #expect(!entry.message.replacingOccurrences(of: digest, with: "").contains("\(victim)"))
            #expect(
                !entry.metadata.filter { !["subject.digest", "run.id"].contains($0.key) }.values.contains {
                    $0.contains("\(victim)")
                })

            // Once the trigger lets it go, the next run takes it.
            try await execute(["DROP TRIGGER refuse ON shop.customer"], on: connection)
            let rerun = try await DemoShop.engine(connection).run([policy], options: DemoShop.options(.live))
            #expect(rerun.outcome == .done)
            #expect(rerun.policies.first?.processed == 1)
        }
    }

    /// A CHECK constraint the anonymized order of one customer breaks: 23514, table named.
    @Test func aConstraintRefusingOneSubjectsAnonymizeLeavesExactlyThatSubject() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = 100
            }
            let due = try await EngineSafetyTests.dueIDs(on: connection)
            let (victim, order) = try await Self.victimWithOrders(due, on: connection)
            try await execute(
                [
                    #"ALTER TABLE shop."order" ADD CONSTRAINT order_kept_attached CHECK (customer_id IS NOT NULL OR id <> \#(order)) NOT VALID"#
                ], on: connection)
            let untouched = try await Self.rows(of: victim, on: connection)
            let report = try await DemoShop.engine(connection).run([policy], options: DemoShop.options(.live))
            let left = try await Self.expectOnlyLeft(
                victim, report: report, due: due, untouched: untouched, on: connection)
            #expect(left.reason == .refused)
            #expect(left.sqlState == "23514")
            #expect(left.table == "shop.order")
            #expect(left.message?.contains("order_kept_attached") == true)
        }
    }

    /// One order row of one customer locked by the shop: that customer is left at once (no lock_timeout wait, no
    /// retry), the rest of its batch goes on.
    @Test func aLockedChildRowLeavesExactlyItsSubjectWithoutWaiting() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = 100
            }
            let due = try await EngineSafetyTests.dueIDs(on: connection)
            let (victim, order) = try await Self.victimWithOrders(due, on: connection)
            let untouched = try await Self.rows(of: victim, on: connection)
            let shop = try await database.connect()
            // The shop's session holds its lock for as long as the run takes (gallra's sessions would give up
            // an idle transaction after seconds).
            try await shop.execute("SET idle_in_transaction_session_timeout = 0")
            try await shop.execute("BEGIN")
            try await shop.execute(#"SELECT FROM shop."order" WHERE id = \#(order) FOR UPDATE"#)
            var options = DemoShop.options(.live)
            // Waiting for the row would take this long: the run must not.
            options.lockTimeout = .seconds(60)
            let started = ContinuousClock.now
            let report = try await DemoShop.engine(connection).run([policy], options: options)
            #expect(ContinuousClock.now - started < .seconds(60))
            try await shop.execute("ROLLBACK")
            await shop.close()
            let left = try await Self.expectOnlyLeft(
                victim, report: report, due: due, untouched: untouched, on: connection)
            #expect(left.reason == .rowLocked)
            #expect(left.table == "shop.order")
            #expect(left.sqlState == nil)

            let rerun = try await DemoShop.engine(connection).run([policy], options: DemoShop.options(.live))
            #expect(rerun.outcome == .done)
            #expect(rerun.policies.first?.processed == 1)
        }
    }

    /// Customers of `among` whose address only they use (no store, no one else's order), and the address:
    /// `customers` of them share it.
    static func addressOf(
        customers: Int, among: ArraySlice<Int64>, on connection: PostgresConnection
    ) async throws -> (address: Int64, customers: [Int64]) {
        let batch = "{" + among.map(String.init).joined(separator: ",") + "}"
        let row = try #require(
            try await connection.query(
                """
                SELECT c.address_id AS address, array_to_string(array_agg(c.id ORDER BY c.id), ',') AS customers
                FROM shop.customer AS c
                WHERE c.address_id IS NOT NULL
                  AND NOT EXISTS (SELECT FROM shop.store AS s WHERE s.address_id = c.address_id)
                GROUP BY c.address_id
                HAVING count(*) = $2 AND bool_and(c.id = ANY ($1::bigint[]))
                   AND NOT EXISTS (SELECT FROM shop."order" AS o WHERE o.shipping_address_id = c.address_id
                                   AND o.customer_id <> ALL (array_agg(c.id)))
                ORDER BY c.address_id LIMIT 1
                """, [.text(batch), .int64(Int64(customers))]
            ).first)
        return (
            try row.decode("address", as: Int64.self),
            try row.decode("customers", as: String.self).split(separator: ",").map { Int64($0)! }
        )
    }

    /// The address one customer points to, locked by the shop: that customer is left at once (no lock_timeout
    /// wait, no retry), the rest of its batch goes on. On one connection, and on three.
    @Test(arguments: [1, 3])
    func aLockedPointedToRowLeavesExactlyItsSubjectWithoutWaiting(parallel: Int) async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = 100
                $0.policy.limits.parallel = parallel
            }
            let due = try await EngineSafetyTests.dueIDs(on: connection)
            let (address, customers) = try await Self.addressOf(customers: 1, among: due[100..<200], on: connection)
            let victim = customers[0]
            let untouched = try await Self.rows(of: victim, on: connection)
            let shop = try await database.connect()
            try await shop.execute("SET idle_in_transaction_session_timeout = 0")
            try await shop.execute("BEGIN")
            try await shop.execute("SELECT FROM shop.address WHERE id = \(address) FOR UPDATE")
            var options = DemoShop.options(.live, database: database)
            // Waiting for the row would take this long: the run must not.
            options.lockTimeout = .seconds(60)
            let started = ContinuousClock.now
            let report = try await DemoShop.engine(connection).run([policy], options: options)
            #expect(ContinuousClock.now - started < .seconds(60))
            try await shop.execute("ROLLBACK")
            await shop.close()
            let left = try await Self.expectOnlyLeft(
                victim, report: report, due: due, untouched: untouched, on: connection)
            #expect(left.reason == .rowLocked)
            #expect(left.table == "shop.address")
            #expect(left.sqlState == nil)

            let rerun = try await DemoShop.engine(connection).run([policy], options: DemoShop.options(.live))
            #expect(rerun.outcome == .done)
            #expect(rerun.policies.first?.processed == 1)
        }
    }

    /// An address two customers of one batch share (a household), locked by the shop: both are left (the row is
    /// held for each of them), and every other subject of the batch goes on.
    @Test func aLockedSharedPointedToRowLeavesEachSubjectPointingToIt() async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = 10_000
            }
            let due = try await EngineSafetyTests.dueIDs(on: connection)
            let (address, victims) = try await Self.addressOf(customers: 2, among: due[...], on: connection)
            var untouched: [String] = []
            for victim in victims { untouched.append(try await Self.rows(of: victim, on: connection)) }
            let shop = try await database.connect()
            try await shop.execute("SET idle_in_transaction_session_timeout = 0")
            try await shop.execute("BEGIN")
            try await shop.execute("SELECT FROM shop.address WHERE id = \(address) FOR UPDATE")
            var options = DemoShop.options(.live)
            options.lockTimeout = .seconds(60)
            let started = ContinuousClock.now
            let report = try await DemoShop.engine(connection).run([policy], options: options)
            #expect(ContinuousClock.now - started < .seconds(60))
            try await shop.execute("ROLLBACK")
            await shop.close()
            #expect(report.outcome == .partial)
            let result = try #require(report.policies.first)
            #expect(result.skippedBatches.isEmpty)
            let left = try #require(result.leftSubjects)
            #expect(left.compactMap(\.key).sorted() == victims.map { "\($0)" }.sorted())
            #expect(left.allSatisfy { $0.reason == .rowLocked && $0.table == "shop.address" })
            #expect(result.processed == due.count - 2)
            var now: [String] = []
            for victim in victims { now.append(try await Self.rows(of: victim, on: connection)) }
            #expect(now == untouched)
            #expect(
                try await DemoShop.auditedDigests(on: connection)
                    == Set(due.filter { !victims.contains($0) }.map { DemoShop.digest(customer: $0) }))
            #expect(
                try await scalar(
                    "SELECT count(*) FROM shop.address WHERE id = \(address)", as: Int.self, on: connection)
                    == 1)
        }
    }

    /// A lock timeout no longer than the brief wait the batch first allows leaves no time to tell which subjects'
    /// rows are held: a lock conflict (here on a row the customer points to, which the batch locks as it captures
    /// it) is then retried, and the batch skipped after its attempts. On one connection, and on three: a retry
    /// picks within its batch's range, while the batches after it go on.
    @Test(arguments: [1, 3])
    func aLockTimeoutIsStillRetriedThenTheBatchSkipped(parallel: Int) async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection)
            let policy = try await DemoShop.policy("inactive-customers", on: connection) {
                $0.policy.limits.batchSize = 100
                $0.policy.limits.parallel = parallel
            }
            let due = try await EngineSafetyTests.dueIDs(on: connection)
            let batch = "{" + due[100..<200].map(String.init).joined(separator: ",") + "}"
            let address = try await scalar(
                "SELECT min(address_id) FROM shop.customer WHERE id = ANY ($1::bigint[])", [.text(batch)],
                as: Int64.self, on: connection)
            let shop = try await database.connect()
            // The shop's session holds its lock for as long as the run takes (gallra's sessions would give up
            // an idle transaction after seconds).
            try await shop.execute("SET idle_in_transaction_session_timeout = 0")
            try await shop.execute("BEGIN")
            try await shop.execute("SELECT FROM shop.address WHERE id = \(address) FOR UPDATE")
            var options = DemoShop.options(.live, database: database)
            options.lockTimeout = .milliseconds(100)
            let report = try await DemoShop.engine(connection).run([policy], options: options)
            try await shop.execute("ROLLBACK")
            await shop.close()
            #expect(report.outcome == .partial)
            let result = try #require(report.policies.first)
            #expect(result.skippedBatches.count == 1)
            #expect(result.skippedBatches.first?.batch == 2)
            #expect(result.skippedBatches.first?.attempts == 4)
            #expect(result.skippedBatches.first?.sqlState == "55P03")
            #expect(result.leftSubjects == nil)
            #expect(result.processed == due.count - 100)
            // The skipped batch's subjects are untouched and unaudited.
            let digests = try await DemoShop.auditedDigests(on: connection)
            #expect(digests == Set((due[..<100] + due[200...]).map { DemoShop.digest(customer: $0) }))
            #expect(
                try await scalar("SELECT count(*) FROM gallra.audit_block", as: Int.self, on: connection)
                    == result.batches)
        }
    }
}
