import Foundation
import GallraPostgres
import GallraTestSupport
import Logging
import Testing

@testable import GallraEngine

/// The queue's SQL interface as the shop calls it: `gallra.request_erasure`, `erasure_status`, `cancel_erasure`
/// (migration 12), through a login role in `gallra_app`.
@Suite("Erasure requests in SQL", .serialized)
struct RequestQueueSQLTests {
    /// A shop with customers, gallra's schema, a policy over `shop.customer`, and a login role in `gallra_app`.
    private func withShop(_ body: (TestDatabase, PostgresConnection, PostgresConnection) async throws -> Void)
        async throws
    {
        let role = "gallra_t_shop_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try await TestServer.admin()
        do {
            try await TestDatabase.with { database, connection in
                try await execute(
                    [
                        "CREATE SCHEMA shop",
                        "CREATE TABLE shop.customer (id bigint PRIMARY KEY, last_seen_at timestamptz)",
                        "CREATE TABLE shop.wishlist_item (id int PRIMARY KEY, customer_id bigint REFERENCES shop.customer)",
                        "INSERT INTO shop.customer (id) VALUES (1), (2), (3)",
                    ], on: connection)
                try await Schema.migrate(on: connection)
                _ = try await PolicyStore(connection: connection).apply([
                    (try policy("inactive-customers"), source: "inactive.yaml")
                ])
                try await connection.execute("CREATE ROLE \(role) LOGIN IN ROLE gallra_app")
                let shop = try await PostgresConnection.connect(database.conninfo + " user=\(role)")
                do {
                    try await body(database, connection, shop)
                } catch {
                    await shop.close()
                    throw error
                }
                await shop.close()
            }
        } catch {
            _ = try? await admin.execute("DROP ROLE IF EXISTS \(role)")
            await admin.close()
            throw error
        }
        try await admin.execute("DROP ROLE \(role)")
        await admin.close()
    }

    @Test("a request is recorded once per subject, with its key as the key column prints it, and can be cancelled")
    func requestAndCancel() async throws {
        try await withShop { database, connection, shop in
            let listener = try await PostgresConnection.connect(database.conninfo)
            try await listener.listen("gallra_erasure")
            let id = try await scalar(
                "SELECT gallra.request_erasure('shop.customer', '042', 'ticket 7', interval '1 hour')", as: Int64.self,
                on: shop)
            let notification = try await listener.waitForNotification(timeout: .seconds(5))
            #expect(notification?.payload == String(id))
            await listener.close()
            // The same subject again, due now: the same request, due at the earlier time.
            let again = try await scalar(
                "SELECT gallra.request_erasure('Shop.\"customer\"', '42')", as: Int64.self, on: shop)
            #expect(again == id)
            let row = try #require(
                try await shop.query(
                    """
                    SELECT status, subject_table, subject_key, reason, not_before <= clock_timestamp() AS due,
                           requested_by = session_user AS mine
                    FROM gallra.erasure_status($1)
                    """, [.int64(id)]
                ).first)
            #expect(try row.decode("status", as: String.self) == "pending")
            #expect(try row.decode("subject_table", as: String.self) == "shop.customer")
            #expect(try row.decode("subject_key", as: String.self) == "42")
            #expect(try row.decode("reason", as: String.self) == "ticket 7")
            #expect(try row.decode("due", as: Bool.self))
            #expect(try row.decode("mine", as: Bool.self))

            #expect(
                try await scalar("SELECT gallra.cancel_erasure($1)", [.int64(id)], as: String.self, on: shop)
                    == "cancelled")
            #expect(
                try await scalar("SELECT gallra.cancel_erasure($1)", [.int64(id)], as: String.self, on: shop)
                    == "cancelled")
            // Cancelled, the subject may be requested again: a new request.
            let next = try await scalar(
                "SELECT gallra.request_erasure('shop.customer', '42')", as: Int64.self, on: shop)
            #expect(next != id)

            // A decided request cannot be cancelled.
            try await connection.execute(
                """
                UPDATE gallra.erasure_request SET status = 'done', decided_at = now(), subject_key = NULL,
                    subject_digest = repeat('ab', 32) WHERE id = $1
                """, [.int64(next)])
            let decided = await #expect(throws: PostgresError.self) {
                try await shop.query("SELECT gallra.cancel_erasure($1)", [.int64(next)])
            }
            #expect(decided?.sqlState == SQLState.requestDecided)
            for call in ["SELECT gallra.cancel_erasure(999)", "SELECT * FROM gallra.erasure_status(999)"] {
                let unknown = await #expect(throws: PostgresError.self, "\(call)") { try await shop.query(call) }
                #expect(unknown?.sqlState == SQLState.requestUnknown, "\(call)")
            }
            // The shop reads the queue only through the functions.
            for table in ["gallra.erasure_request", "gallra.hold", "gallra.audit_event"] {
                let error = await #expect(throws: PostgresError.self, "\(table)") {
                    try await shop.query("SELECT * FROM \(table)")
                }
                #expect(error?.sqlState == .insufficientPrivilege, "\(table)")
            }
        }
    }

    @Test(
        "bad arguments are refused with a GC SQLSTATE and record nothing",
        arguments: [
            ("'shop.customer', NULL", "GC005"), ("'', '1'", "GC005"), ("'customer', '1'", "GC005"),
            ("'shop.nobody', '1'", "GC002"), ("'shop.customer', 'x'", "GC003"),
            ("'shop.customer', '1', ''", "GC005"), ("'shop.customer', '1', repeat('x', 1025)", "GC006"),
            ("'shop.customer', '1', NULL, interval '-1 hour'", "GC005"),
        ])
    func refused(call: String, sqlState: String) async throws {
        try await withShop { _, connection, shop in
            let error = await #expect(throws: PostgresError.self) {
                try await shop.query("SELECT gallra.request_erasure(\(call))")
            }
            let state = error?.sqlState?.rawValue
            #expect(state == sqlState, "\(error?.message ?? "")")
            let recorded = try await scalar("SELECT count(*) FROM gallra.erasure_request", as: Int.self, on: connection)
            #expect(recorded == 0)
        }
    }

    @Test("version 12 upgrades a version 11 database; events are chained and append-only")
    func upgradeAndEvents() async throws {
        try await TestDatabase.with { _, connection in
            let throughEleven = Array(Schema.migrations.prefix { $0.version <= 11 })
            _ = try await Schema.migrate(
                on: connection, migrations: throughEleven, appliedBy: nil, logger: .init(label: "test"))
            #expect(try await Schema.migrate(on: connection).map(\.version) == Array(12...Schema.latestVersion))
            let first = try await connection.transaction { connection in
                try await AuditEvents.append(
                    .holdPlaced, subjectTable: "shop.customer", subjectDigest: String(repeating: "ab", count: 32),
                    detail: #"{"hold":1}"#, osUser: "clerk", inTransactionOn: connection)
            }
            let second = try await connection.transaction { connection in
                try await AuditEvents.append(
                    .correction, subjectTable: "shop.customer", subjectDigest: nil, detail: "{}", osUser: "clerk",
                    inTransactionOn: connection)
            }
            #expect(first.sequence == 1 && first.previousHash == AuditChain.genesisHash)
            #expect(second.previousHash == first.hash)
            let stored = try await AuditEvents.all(on: connection)
            #expect(stored == [first, second])
            #expect(AuditEvents.firstBreak(in: stored) == nil)
            #expect(try await AuditEvents.lookup(digest: String(repeating: "ab", count: 32), on: connection) == [first])
            var edited = stored
            edited[1].detail = #"{"columns":["email"]}"#
            #expect(AuditEvents.firstBreak(in: edited)?.sequence == 2)
            for statement in [
                "UPDATE gallra.audit_event SET os_user = 'x'", "DELETE FROM gallra.audit_event",
                "TRUNCATE gallra.audit_event",
            ] {
                let error = await #expect(throws: PostgresError.self, "\(statement)") {
                    try await connection.execute(statement)
                }
                #expect(error?.sqlState == "23001")
            }
        }
    }
}
