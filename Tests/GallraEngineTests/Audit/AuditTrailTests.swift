import GallraTestSupport
import Foundation
@testable import GallraEngine
import GallraPostgres
import Testing

@Suite("Appending to the audit trail")
struct AuditTrailTests {
    static let digester = SubjectDigester(key: [UInt8](repeating: 42, count: 32))

    static func records(_ keys: [String]) -> [AuditRecord] {
        keys.map {
            AuditRecord(
                subjectDigest: digester.digest(table: "shop.customer", key: $0),
                counts: [AuditCount(table: "shop.customer", action: .deleted, rows: 1)])
        }
    }

    @Test func theRecordsTheInsertUnpacksAreTheRecordsAsJSON() throws {
        let records = [
            AuditRecord(
                subjectDigest: Self.digester.digest(table: "shop.customer", key: "7"),
                counts: [
                    AuditCount(table: #"odd"schema.tab\le é"#, action: .anonymized, rows: 3),
                    AuditCount(table: "shop.address", action: .retained, rows: 1),
                    AuditCount(table: "shop.address", action: .anonymized, rows: 2),
                ]),
            AuditRecord(subjectDigest: Self.digester.digest(table: "shop.customer", key: "8"), counts: []),
        ]
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let text = AuditTrail.recordsJSON(records)
        #expect(try decoder.decode([AuditRecord].self, from: Data(text.utf8)) == records)
        #expect(AuditTrail.recordsJSON([]) == "[]")
    }

    @Test func blocksAreStoredChainedAndTheHeadFollows() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            let run = UUID().uuidString.lowercased()
            let first = try await connection.transaction { connection in
                try await AuditTrail.append(
                    records: Self.records(["1", "2"]), run: run, policy: "p", policyVersion: 3, on: connection)
            }
            let second = try await connection.transaction { connection in
                try await AuditTrail.append(
                    records: Self.records(["3"]), run: run, policy: "p", policyVersion: 3, on: connection)
            }
            #expect(first.sequence == 1)
            #expect(second.sequence == 2)
            #expect(second.previousHash == first.hash)
            #expect(
                try await scalar("SELECT hash FROM gallra.audit_head", as: String.self, on: connection) == second.hash)
            #expect(try await scalar("SELECT count(*) FROM gallra.audit_subject", as: Int.self, on: connection) == 3)
            // The stored records and block recompute to the stored hash.
            let rows = try await connection.query(
                "SELECT subject_digest, counts::text AS counts FROM gallra.audit_subject WHERE block = 1 ORDER BY ordinal"
            )
            let stored = try rows.map { row in
                AuditRecord(
                    subjectDigest: try row.decode("subject_digest", as: String.self),
                    counts: try JSONDecoder().decode(
                        [AuditCount].self, from: Data(try row.decode("counts", as: String.self).utf8)))
            }
            #expect(stored == Self.records(["1", "2"]))
            let createdAt = try await scalar(
                "SELECT created_at FROM gallra.audit_block WHERE sequence = 1", as: PostgresTimestamp.self,
                on: connection)
            var reread = first
            reread.createdAtMicroseconds = createdAt.microsecondsSince2000 + 946_684_800_000_000
            #expect(reread.expectedHash(records: stored).hash == first.hash)
        }
    }

    @Test func aRolledBackBatchLeavesNoBlock() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            struct Abort: Error {}
            await #expect(throws: Abort.self) {
                try await connection.transaction { connection in
                    try await AuditTrail.append(
                        records: Self.records(["1"]), run: UUID().uuidString, policy: "p", policyVersion: 1,
                        on: connection)
                    throw Abort()
                }
            }
            #expect(try await scalar("SELECT count(*) FROM gallra.audit_block", as: Int.self, on: connection) == 0)
            #expect(try await scalar("SELECT sequence FROM gallra.audit_head", as: Int.self, on: connection) == 0)
        }
    }

    @Test func theTrailRefusesChanges() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            _ = try await connection.transaction { connection in
                try await AuditTrail.append(
                    records: Self.records(["1"]), run: UUID().uuidString, policy: "p", policyVersion: 1,
                    on: connection)
            }
            for statement in [
                "UPDATE gallra.audit_subject SET counts = '[]'", "DELETE FROM gallra.audit_block",
                "TRUNCATE gallra.audit_subject",
            ] {
                let error = await #expect(throws: PostgresError.self) { try await connection.execute(statement) }
                #expect(error?.message.contains("append-only") == true, "\(statement)")
            }
        }
    }

    @Test func keysShorterThan32BytesAreRefused() throws {
        #expect(throws: AuditKeyError.self) { try AuditKey(bytes: [1, 2, 3]) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gallra-key-\(UUID())").path
        try "short\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = #expect(throws: AuditKeyError.self) { try AuditKey.read(path: path) }
        #expect(error?.message.contains("at least 32") == true)
        #expect(throws: AuditKeyError.self) { try AuditKey.read(path: path + ".missing") }
    }
}
