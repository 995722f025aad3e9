import Foundation
import GallraCore
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

@testable import GallraEngine

/// Processing erasure requests against the demo shop with its on-request policy (`config/policies/
/// erasure-requests.yaml`): the outcomes, the queue afterwards, and the rows, checked by hand-written SQL.
@Suite("Erasure request processing", .serialized)
struct ErasureProcessingTests {
    /// The demo shop with the on-request policy and the retention policy over employees stored.
    private func withShop(_ body: (TestDatabase, PostgresConnection) async throws -> Void) async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection, customers: 300)
            var stored: [(policy: Policy, source: String)] = []
            for name in ["erasure-requests", "former-employees"] {
                let path = sourceRoot.appendingPathComponent("config/policies/\(name).yaml").path
                let file = PolicyFile.read(path: path)
                stored.append((try #require(file.policies.first, "\(file.diagnostics)").policy, path))
            }
            _ = try await PolicyStore(connection: connection).apply(stored)
            try await body(database, connection)
        }
    }

    /// A customer with orders and no legal hold.
    private func customer(on connection: PostgresConnection) async throws -> Int64 {
        let row = try await connection.query(
            """
            SELECT c.id FROM shop.customer AS c
            WHERE c.legal_hold IS NOT TRUE AND EXISTS (SELECT FROM shop."order" AS o WHERE o.customer_id = c.id)
            ORDER BY c.id LIMIT 1
            """
        ).first
        return try #require(row).decode("id", as: Int64.self)
    }

    private func request(_ id: Int64, after: RetentionPeriod? = nil, on connection: PostgresConnection) async throws
        -> Int64
    {
        try await ErasureQueue.request(
            table: "shop.customer", key: String(id), reason: "ticket", after: after, on: connection)
    }

    private func count(_ sql: String, on connection: PostgresConnection) async throws -> Int {
        try #require(try await connection.query(sql).first).decode("n", as: Int.self)
    }

    @Test("a request is done: the account deleted, the orders anonymized, the queue holding only the digest")
    func done() async throws {
        try await withShop { _, connection in
            let customer = try await customer(on: connection)
            let orders = try await count(
                "SELECT count(*) AS n FROM shop.\"order\" WHERE customer_id = \(customer)", on: connection)
            let id = try await request(customer, on: connection)
            let outcomes = try await DemoShop.engine(connection).processErasureRequests(.ids([id]))
            let outcome = try #require(outcomes.first)
            #expect(outcome.status == .done)
            #expect(outcome.subjectDigest == DemoShop.digest(customer: customer))
            #expect(outcome.counts.contains(.init(table: "shop.customer", action: "delete", rows: 1)))
            #expect(outcome.counts.contains(.init(table: "shop.order", action: "anonymize", rows: orders)))
            #expect(outcome.run != nil)
            #expect(
                try await count("SELECT count(*) AS n FROM shop.customer WHERE id = \(customer)", on: connection) == 0)
            let row = try #require(
                try await connection.query(
                    """
                    SELECT status, subject_key, subject_digest, run::text AS run, attempts, decided_at IS NOT NULL AS decided,
                           (SELECT trigger FROM gallra.run WHERE id = r.run) AS trigger
                    FROM gallra.erasure_request AS r WHERE id = $1
                    """, [.int64(id)]
                ).first)
            #expect(try row.decode("status", as: String.self) == "done")
            #expect(try row.decode("subject_key", as: String?.self) == nil)
            #expect(try row.decode("subject_digest", as: String.self) == DemoShop.digest(customer: customer))
            #expect(try row.decode("run", as: String.self) == outcome.run)
            #expect(try row.decode("attempts", as: Int.self) == 1)
            #expect(try row.decode("trigger", as: String.self) == "erase")
            // No column of any decided row holds the key.
            #expect(
                try await count(
                    "SELECT count(*) AS n FROM gallra.erasure_request WHERE status <> 'pending' AND subject_key IS NOT NULL",
                    on: connection) == 0)
            // Processed once: a second processing reports the same outcome and adds no audit record.
            let again = try await DemoShop.engine(connection).processErasureRequests(.ids([id]))
            #expect(again.first?.status == .done)
            #expect(again.first?.run == outcome.run)
            #expect(
                try await count(
                    "SELECT count(*) AS n FROM gallra.audit_subject WHERE subject_digest = '\(outcome.subjectDigest)'",
                    on: connection) == 1)
        }
    }

    @Test("a legal hold refuses the request and names the hold; an exemption refuses it and names the exemption")
    func refusals() async throws {
        try await withShop { _, connection in
            let customer = try await customer(on: connection)
            let hold = try #require(
                try await connection.query(
                    """
                    INSERT INTO gallra.hold (subject_table, subject_key, reason, placed_by)
                    VALUES ('shop.customer', $1, 'case 2026-17', 'legal') RETURNING id
                    """, [.text(String(customer))]
                ).first
            ).decode("id", as: Int64.self)
            let heldID = try await request(customer, on: connection)
            let exempt = try #require(
                try await connection.query(
                    "UPDATE shop.customer SET legal_hold = true WHERE id = (SELECT max(id) FROM shop.customer) RETURNING id"
                ).first
            ).decode("id", as: Int64.self)
            let exemptID = try await request(exempt, on: connection)
            let missingID = try await ErasureQueue.request(
                table: "shop.customer", key: "987654321", reason: nil, after: nil, on: connection)
            let outcomes = try await DemoShop.engine(connection).processErasureRequests(
                .ids([heldID, exemptID, missingID]))
            #expect(outcomes.map(\.status) == [.refused, .refused, .refused])
            #expect(outcomes.map(\.refusalKind) == [.held, .exempt, .notFound])
            #expect(outcomes[0].refusal == "legal hold in force: hold \(hold) (case 2026-17); release it to erase")
            #expect(outcomes[1].refusal?.contains("erasure-requests") == true)
            #expect(outcomes[1].refusal?.contains("except[0] (legal_hold is true)") == true)
            #expect(
                try await count(
                    "SELECT count(*) AS n FROM shop.customer WHERE id IN (\(customer), \(exempt))", on: connection) == 2
            )
            #expect(
                try await count(
                    "SELECT count(*) AS n FROM gallra.erasure_request WHERE status = 'refused' AND subject_key IS NULL AND refusal IS NOT NULL",
                    on: connection) == 3)
        }
    }

    @Test("a table without an on-request policy is refused")
    func noPolicy() async throws {
        try await withShop { _, connection in
            let employee = try #require(try await connection.query("SELECT id FROM shop.employee LIMIT 1").first)
                .decode("id", as: Int64.self)
            let id = try await ErasureQueue.request(
                table: "shop.employee", key: String(employee), reason: nil, after: nil, on: connection)
            let outcome = try #require(
                try await DemoShop.engine(connection).processErasureRequests(.ids([id])).first)
            #expect(outcome.refusalKind == .noPolicy)
            #expect(outcome.refusalKind?.exitStatus.rawValue == 78)
        }
    }

    @Test("an undo window is honoured, and a request cancelled inside it loses its key at the next processing")
    func undoWindow() async throws {
        try await withShop { _, connection in
            let first = try await customer(on: connection)
            let id = try await request(first, after: RetentionPeriod(days: 1), on: connection)
            let engine = try DemoShop.engine(connection)
            #expect(try await engine.processErasureRequests(.due).isEmpty)
            let next = try #require(try await ErasureQueue.nextDue(on: connection))
            let due = try #require(
                try await connection.query("SELECT not_before FROM gallra.erasure_request WHERE id = $1", [.int64(id)])
                    .first)
            #expect(next == (try due.decode("not_before", as: PostgresTimestamp.self)))
            let waiting = try #require(try await engine.processErasureRequests(.ids([id])).first)
            #expect(waiting.status == .pending)
            #expect(waiting.notBefore != nil)
            #expect(try await count("SELECT count(*) AS n FROM shop.customer WHERE id = \(first)", on: connection) == 1)
            try await connection.execute(
                "UPDATE gallra.erasure_request SET not_before = clock_timestamp() - interval '1 second' WHERE id = $1",
                [.int64(id)])
            #expect(try await engine.processErasureRequests(.due).map(\.status) == [.done])

            let second = try #require(
                try await connection.query(
                    "SELECT id FROM shop.customer WHERE legal_hold IS NOT TRUE ORDER BY id LIMIT 1"
                ).first
            ).decode("id", as: Int64.self)
            let cancelled = try await request(second, after: RetentionPeriod(days: 1), on: connection)
            try await ErasureQueue.cancel(cancelled, on: connection)
            #expect(try await engine.processErasureRequests(.due).isEmpty)
            let row = try #require(try await ErasureQueue.read(cancelled, on: connection))
            #expect(row.status == .cancelled)
            #expect(row.subjectKey == nil)
            #expect(row.subjectDigest == DemoShop.digest(customer: second))
            #expect(
                try await count("SELECT count(*) AS n FROM shop.customer WHERE id = \(second)", on: connection) == 1)
            let decided = await #expect(throws: ErasureQueueRefusal.self) {
                try await ErasureQueue.cancel(id, on: connection)
            }
            #expect(decided?.sqlState.rawValue == "GC011")
            #expect(decided?.exitStatus.rawValue == 65)
        }
    }

    @Test("a subject row the shop holds leaves the request pending; it is done once the lock goes")
    func lockedSubject() async throws {
        try await withShop { database, connection in
            let customer = try await customer(on: connection)
            let id = try await request(customer, on: connection)
            let shop = try await database.connect()
            try await shop.execute("BEGIN")
            try await shop.execute("SELECT * FROM shop.customer WHERE id = \(customer) FOR UPDATE")
            let engine = try DemoShop.engine(connection)
            let held = try #require(try await engine.processErasureRequests(.due).first)
            #expect(held.status == .pending)
            #expect(held.attempts == 1)
            #expect(try await ErasureQueue.read(id, on: connection)?.subjectKey == String(customer))
            try await shop.execute("COMMIT")
            await shop.close()
            let done = try #require(try await engine.processErasureRequests(.due).first)
            #expect(done.status == .done)
            #expect(done.attempts == 2)
        }
    }

    @Test("two processings of one request at once erase the subject once, and both report it done")
    func concurrent() async throws {
        try await withShop { database, connection in
            let customer = try await customer(on: connection)
            let id = try await request(customer, on: connection)
            let other = try await database.connect()
            async let first = DemoShop.engine(connection).processErasureRequests(.ids([id]))
            async let second = DemoShop.engine(other).processErasureRequests(.ids([id]))
            let outcomes = try await first + second
            await other.close()
            #expect(outcomes.map(\.status) == [.done, .done])
            #expect(outcomes[0].run == outcomes[1].run)
            #expect(try await count("SELECT count(*) AS n FROM gallra.erasure_request", on: connection) == 1)
            #expect(
                try await count(
                    "SELECT count(*) AS n FROM gallra.audit_subject WHERE subject_digest = '\(DemoShop.digest(customer: customer))'",
                    on: connection) == 1)
            #expect(
                try await count("SELECT count(*) AS n FROM gallra.run WHERE trigger = 'erase'", on: connection) == 1)
        }
    }

    @Test("a decision lost after the erasure committed is found in the audit trail: the request is done")
    func lostDecision() async throws {
        try await withShop { _, connection in
            let customer = try await customer(on: connection)
            let id = try await request(customer, on: connection)
            let engine = try DemoShop.engine(connection)
            let outcome = try #require(try await engine.processErasureRequests(.ids([id])).first)
            // As if gallra had been killed between the erasure's commit and the request's update.
            try await connection.execute(
                """
                UPDATE gallra.erasure_request SET status = 'pending', decided_at = NULL, decided_by = NULL, run = NULL,
                    counts = NULL, subject_key = $2, subject_digest = NULL, attempts = 0
                WHERE id = $1
                """, [.int64(id), .text(String(customer))])
            let again = try #require(try await engine.processErasureRequests(.due).first)
            #expect(again.status == .done)
            #expect(again.run == outcome.run)
            #expect(again.counts == outcome.counts)
        }
    }

    @Test(
        "a second on-request policy over a table for the same purpose is refused, naming both; another purpose is not")
    func oneOnRequestPolicyPerPurpose() async throws {
        try await withShop { _, connection in
            let path = sourceRoot.appendingPathComponent("config/policies/erasure-requests.yaml").path
            var second = try #require(PolicyFile.read(path: path).policies.first).policy
            second.name = try PolicyName("erasure-requests-again")
            let store = PolicyStore(connection: connection)
            let refused = await #expect(throws: PolicyStoreError.self) {
                try await store.apply([(second, source: "again.yaml")])
            }
            #expect(refused?.code == .secondOnRequestPolicy)
            #expect(
                refused?.message.hasPrefix(
                    "policies erasure-requests and erasure-requests-again both act on erasure requests for shop.customer (expires: on_request) and both state the same purpose;"
                ) == true)
            #expect(refused?.exitStatus.rawValue == 65)
            #expect(try await count("SELECT count(*) AS n FROM gallra.policy", on: connection) == 2)
            second.purpose = "Sending the newsletter."
            _ = try await store.apply([(second, source: "again.yaml")])
            #expect(try await count("SELECT count(*) AS n FROM gallra.policy", on: connection) == 3)
        }
    }

    @Test("without an audit key nothing is processed")
    func noAuditKey() async throws {
        try await withShop { _, connection in
            await #expect(throws: RunError.self) {
                try await DemoShop.engine(connection, key: false).processErasureRequests(.due)
            }
        }
    }
}
