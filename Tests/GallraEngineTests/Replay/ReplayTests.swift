import Foundation
import GallraCore
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

@testable import GallraEngine

/// Replay after a restore (`Engine.replay`) against the demo shop with `inactive-customers` stored: which subjects it
/// finds, what it processes again and under which version, checked by hand-written SQL.
@Suite("Replay", .serialized)
struct ReplayTests {
    private func withShop(_ body: (TestDatabase, PostgresConnection) async throws -> Void) async throws {
        try await TestDatabase.with { database, connection in
            try await DemoShop.load(database, on: connection, customers: 300)
            let path = sourceRoot.appendingPathComponent("config/policies/inactive-customers.yaml").path
            let parsed = try #require(PolicyFile.read(path: path).policies.first)
            _ = try await PolicyStore(connection: connection).apply([(parsed.policy, source: path)])
            try await body(database, connection)
        }
    }

    /// Customer ids chosen by `condition`, in id order.
    private func customers(_ condition: String, limit: Int, on connection: PostgresConnection) async throws -> [Int64] {
        try await connection.query("SELECT id FROM shop.customer AS c WHERE \(condition) ORDER BY id LIMIT \(limit)")
            .map { try $0.decode("id", as: Int64.self) }
    }

    private func block(_ sequence: Int64, _ ids: [Int64], version: Int = 1, extra: [String] = []) -> ReplayBlock {
        ReplayBlock(
            sequence: sequence, policy: "inactive-customers", policyVersion: version, subjectTable: "shop.customer",
            digests: ids.map { DemoShop.digest(customer: $0) } + extra)
    }

    private func count(_ sql: String, on connection: PostgresConnection) async throws -> Int {
        try await scalar(sql, as: Int.self, on: connection)
    }

    @Test(
        "a dry run counts found and gone subjects, shows keys and changes nothing; the live replay processes exactly them, whatever the rule and exemptions say"
    )
    func processesTheLedgersSubjects() async throws {
        try await withShop { _, connection in
            // Recently seen customers (the rule does not hold) and one whose legal_hold column is set.
            let active = try await customers(
                "last_seen_at > timestamptz '2026-11-29' - interval '60 days' AND NOT legal_hold", limit: 6,
                on: connection)
            let flagged = try await customers("NOT legal_hold", limit: 1, on: connection)
            try await connection.execute("UPDATE shop.customer SET legal_hold = true WHERE id = \(flagged[0])")
            let wanted = active + flagged
            try #require(wanted.count == 7)
            let missing = DemoShop.digest(customer: 987_654_321)
            let blocks = [block(4, Array(wanted.prefix(4)), extra: [missing]), block(5, Array(wanted.dropFirst(4)))]
            let before = try await checksumEverything(on: connection)

            let dry = try await DemoShop.engine(connection).replay(blocks, dryRun: true)
            #expect(dry.outcome == .done)
            #expect(dry.blocks == 2)
            let policy = try #require(dry.policies.first)
            #expect(dry.policies.count == 1)
            #expect(policy.version == 1 && policy.note == nil)
            #expect(policy.recorded == 8 && policy.inTrail == 0 && policy.subjects == 8)
            #expect(policy.found == 7 && policy.gone == 1)
            #expect(policy.sampleKeys == wanted.sorted().prefix(5).map(String.init))
            #expect(try await checksumEverything(on: connection) == before)

            let live = try await DemoShop.engine(connection).replay(blocks, dryRun: false)
            #expect(live.outcome == .done)
            #expect(live.replayed == 7)
            #expect(live.policies.first?.processed == 7 && live.policies.first?.notProcessed == 0)
            #expect(live.policies.first?.sampleKeys == nil)
            let run = try #require(live.run)
            #expect(run.trigger == "replay")
            let list = wanted.map(String.init).joined(separator: ",")
            #expect(try await count("SELECT count(*) FROM shop.customer WHERE id IN (\(list))", on: connection) == 0)
            #expect(try await count("SELECT count(*) FROM shop.customer", on: connection) == 300 - 7)
            #expect(
                try await scalar(
                    "SELECT trigger FROM gallra.run WHERE id = $1::uuid", [.text(run.runID)], as: String.self,
                    on: connection) == "replay")
            // One audit block per batch, recording exactly the wanted digests under the recorded version.
            let recorded = Set(
                try await connection.query(
                    """
                    SELECT s.subject_digest FROM gallra.audit_subject s JOIN gallra.audit_block b ON b.sequence = s.block
                    WHERE b.run = $1::uuid AND b.policy = 'inactive-customers' AND b.policy_version = 1
                    """, [.text(run.runID)]
                ).map { try $0.decode("subject_digest", as: String.self) })
            #expect(recorded == Set(wanted.map { DemoShop.digest(customer: $0) }))

            // Again: the restored trail records them now; nothing left to do, nothing changes.
            let after = try await checksumEverything(on: connection)
            let again = try await DemoShop.engine(connection).replay(blocks, dryRun: false)
            #expect(again.policies.first?.inTrail == 7 && again.policies.first?.subjects == 1)
            #expect(again.policies.first?.found == 0 && again.run == nil)
            #expect(try await checksumEverything(on: connection) == after)
        }
    }

    @Test("a legal hold in force refuses a subject: the replay is partial and the subject stays")
    func holdsRefuse() async throws {
        try await withShop { _, connection in
            let ids = try await customers("NOT legal_hold", limit: 3, on: connection)
            try await connection.execute(
                """
                INSERT INTO gallra.hold (subject_table, subject_key, reason, placed_by)
                VALUES ('shop.customer', $1, 'case 2026-17', 'legal')
                """, [.text(String(ids[1]))])
            let report = try await DemoShop.engine(connection).replay([block(1, ids)], dryRun: false)
            #expect(report.outcome == .partial)
            #expect(report.policies.first?.found == 3)
            #expect(report.policies.first?.processed == 2)
            #expect(report.policies.first?.notProcessed == 1)
            #expect(try await count("SELECT count(*) FROM shop.customer WHERE id = \(ids[1])", on: connection) == 1)
            #expect(
                try await count(
                    "SELECT count(*) FROM shop.customer WHERE id IN (\(ids[0]), \(ids[2]))", on: connection) == 0)
        }
    }

    @Test(
        "a version the store no longer holds is replaced by the current one, said so; an unknown policy is unresolved")
    func versions() async throws {
        try await withShop { _, connection in
            let ids = try await customers("true", limit: 2, on: connection)
            let unknown = ReplayBlock(
                sequence: 2, policy: "applied-after-the-backup", policyVersion: 1, subjectTable: "shop.customer",
                digests: [DemoShop.digest(customer: ids[1])])
            let dry = try await DemoShop.engine(connection).replay(
                [block(1, [ids[0]], version: 3), unknown], dryRun: true)
            #expect(dry.outcome == .unresolved)
            let fallback = try #require(dry.policies.first)
            #expect(fallback.recordedVersion == 3 && fallback.version == 1)
            #expect(fallback.note?.contains("version 3 is not stored") == true)
            #expect(fallback.found == 1)
            let missing = try #require(dry.policies.last)
            #expect(missing.version == nil && missing.found == 0 && missing.gone == 0)
            #expect(missing.unresolved?.contains("gallra policy apply") == true)

            let live = try await DemoShop.engine(connection).replay(
                [block(1, [ids[0]], version: 3), unknown], dryRun: false)
            #expect(live.outcome == .unresolved)
            #expect(live.policies.first?.processed == 1)
            #expect(try await count("SELECT count(*) FROM shop.customer WHERE id = \(ids[0])", on: connection) == 0)
            #expect(try await count("SELECT count(*) FROM shop.customer WHERE id = \(ids[1])", on: connection) == 1)
        }
    }

    @Test("another audit key, a malformed digest and no audit key are refused before anything is read")
    func refusals() async throws {
        try await withShop { _, connection in
            let engine = try DemoShop.engine(connection)
            var other = block(1, [1])
            other.keyCheck = "0123456789abcdef"
            await #expect(throws: ReplayError.self) { try await engine.replay([other], dryRun: true) }
            do {
                _ = try await engine.replay([other], dryRun: true)
            } catch let error as ReplayError {
                #expect(error.exitStatus == .configuration)
                #expect(error.description.contains("another audit key"))
            }
            do {
                _ = try await engine.replay([block(1, [], extra: ["xyz"])], dryRun: true)
                Issue.record("a malformed digest was accepted")
            } catch let error as ReplayError {
                #expect(error.exitStatus == .dataError)
            }
            do {
                _ = try await DemoShop.engine(connection, key: false).replay([block(1, [1])], dryRun: true)
                Issue.record("a replay without an audit key ran")
            } catch let error as ReplayError {
                #expect(error.exitStatus == .configuration)
            }
            var matching = block(1, [1])
            matching.keyCheck = try DemoShop.auditKey().digester.keyCheck
            #expect(try await engine.replay([matching], dryRun: true).policies.first?.found == 1)
        }
    }

    @Test("a digest value reads its hex in either case and prints it in lower case; other text is refused")
    func digestValues() throws {
        let digest = DemoShop.digest(customer: 42)
        let value = try #require(SubjectDigestValue(hex: digest))
        #expect(value.hex == digest)
        #expect(SubjectDigestValue(hex: digest.uppercased()) == value)
        #expect(try DemoShop.auditKey().digester.digestValue(table: "shop.customer", key: "42") == value)
        #expect(SubjectDigestValue(hex: String(digest.dropLast())) == nil)
        #expect(SubjectDigestValue(hex: String(digest.dropLast()) + "g") == nil)
        #expect(SubjectDigestValue(hex: DemoShop.digest(customer: 43)) != value)
    }
}
