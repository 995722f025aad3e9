import GallraTestSupport
import Foundation
import GallraEngine
import GallraPostgres
import Testing

/// A chain of `blocks` blocks of `perBlock` records each, every block in its own transaction as batches write them.
private func buildChain(blocks: Int = 5, perBlock: Int = 3, on connection: PostgresConnection) async throws
    -> [AuditBlock]
{
    try await Schema.migrate(on: connection)
    let run = UUID().uuidString  // upper case on purpose: the block must be sealed over the stored (lower case) id
    var chain: [AuditBlock] = []
    for block in 1...blocks {
        let keys = (1...perBlock).map { String(block * 100 + $0) }
        chain.append(
            try await connection.transaction { connection in
                try await AuditTrail.append(
                    records: AuditVerifyTests.records(keys), run: run, policy: "inactive-customers",
                    policyVersion: 3, on: connection)
            })
    }
    return chain
}

/// Runs statements as a superuser attacker would: with the append-only triggers (and foreign keys) switched off.
private func tamper(_ statements: [String], on connection: PostgresConnection) async throws {
    try await connection.execute("SET session_replication_role = replica")
    for statement in statements { try await connection.execute(statement) }
    try await connection.execute("RESET session_replication_role")
}

@Suite("Verifying the audit trail")
struct AuditVerifyTests {
    static let digester = SubjectDigester(key: [UInt8](repeating: 7, count: 32))

    static func records(_ keys: [String]) -> [AuditRecord] {
        keys.map {
            AuditRecord(
                subjectDigest: digester.digest(table: "shop.customer", key: $0),
                counts: [
                    AuditCount(table: "shop.customer", action: .deleted, rows: 1),
                    AuditCount(table: "shop.order", action: .anonymized, rows: Int($0)! % 7),
                ])
        }
    }

    @Test func anIntactChainVerifies() async throws {
        try await TestDatabase.with { _, connection in
            let chain = try await buildChain(on: connection)
            let result = try await AuditTrail.verify(on: connection)
            #expect(result.firstBreak == nil)
            #expect(result.isIntact)
            #expect(result.blocks == 5)
            #expect(result.records == 15)
            #expect(result.head == AuditVerification.Head(sequence: 5, hash: chain[4].hash))
        }
    }

    @Test func anEmptyTrailVerifies() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            let result = try await AuditTrail.verify(on: connection)
            #expect(result.isIntact)
            #expect(result.blocks == 0)
            #expect(result.head == nil)
        }
    }

    /// One way to tamper with the 5-block chain, and where and how verify must see it.
    struct Tampering: Sendable, CustomTestStringConvertible {
        var name: String
        var statements: @Sendable ([AuditBlock]) -> [String]
        var block: Int64
        var reason: AuditBreak.Reason
        var record: Int? = nil

        var testDescription: String { name }
    }

    static let tamperings: [Tampering] = [
        Tampering(
            name: "a record's counts edited",
            statements: { _ in
                [
                    """
                    UPDATE gallra.audit_subject SET counts = jsonb_set(counts, '{0,rows}', '2')
                    WHERE block = 3 AND ordinal = 2
                    """
                ]
            }, block: 3, reason: .editedRecord),
        Tampering(
            name: "a record's digest edited",
            statements: { _ in
                ["UPDATE gallra.audit_subject SET subject_digest = repeat('a', 64) WHERE block = 2 AND ordinal = 1"]
            }, block: 2, reason: .editedRecord),
        Tampering(
            name: "a record's counts replaced by something else",
            statements: { _ in
                [#"UPDATE gallra.audit_subject SET counts = '{"rows": "none"}' WHERE block = 4 AND ordinal = 3"#]
            }, block: 4, reason: .editedRecord, record: 3),
        Tampering(
            name: "a record deleted",
            statements: { _ in ["DELETE FROM gallra.audit_subject WHERE block = 4 AND ordinal = 2"] },
            block: 4, reason: .deletedRecord, record: 2),
        Tampering(
            name: "the last record of a block deleted",
            statements: { _ in ["DELETE FROM gallra.audit_subject WHERE block = 2 AND ordinal = 3"] },
            block: 2, reason: .deletedRecord, record: 3),
        Tampering(
            name: "a record inserted",
            statements: { _ in
                [
                    """
                    INSERT INTO gallra.audit_subject (block, ordinal, subject_digest, counts)
                    SELECT 2, 4, repeat('b', 64), counts FROM gallra.audit_subject WHERE block = 2 AND ordinal = 1
                    """
                ]
            }, block: 2, reason: .insertedRecord, record: 4),
        Tampering(
            name: "two records swapped",
            statements: { _ in
                [
                    "UPDATE gallra.audit_subject SET ordinal = -1 WHERE block = 3 AND ordinal = 1",
                    "UPDATE gallra.audit_subject SET ordinal = 1 WHERE block = 3 AND ordinal = 3",
                    "UPDATE gallra.audit_subject SET ordinal = 3 WHERE block = 3 AND ordinal = -1",
                ]
            }, block: 3, reason: .reorderedRecords, record: 1),
        Tampering(
            name: "a block's policy version edited",
            statements: { _ in ["UPDATE gallra.audit_block SET policy_version = 2 WHERE sequence = 2"] },
            block: 2, reason: .editedBlock),
        Tampering(
            name: "a block's time edited",
            statements: { _ in
                ["UPDATE gallra.audit_block SET created_at = created_at - interval '1 day' WHERE sequence = 4"]
            }, block: 4, reason: .editedBlock),
        Tampering(
            name: "a block's subjects count edited",
            statements: { _ in ["UPDATE gallra.audit_block SET subjects = 2 WHERE sequence = 1"] },
            block: 1, reason: .editedBlock),
        Tampering(
            name: "a middle block deleted with its records",
            statements: { _ in
                [
                    "DELETE FROM gallra.audit_subject WHERE block = 3",
                    "DELETE FROM gallra.audit_block WHERE sequence = 3",
                ]
            }, block: 3, reason: .deletedBlock),
        Tampering(
            name: "the last block deleted with its records",
            statements: { _ in
                [
                    "DELETE FROM gallra.audit_subject WHERE block = 5",
                    "DELETE FROM gallra.audit_block WHERE sequence = 5",
                ]
            }, block: 5, reason: .deletedBlock),
        Tampering(
            name: "a forged block appended, the head untouched",
            statements: { chain in
                let forged = AuditChain.seal(
                    after: (5, chain[4].hash), run: chain[4].run, policy: "inactive-customers", policyVersion: 3,
                    createdAtMicroseconds: chain[4].createdAtMicroseconds + 1_000_000, records: [])
                return [Self.insert(forged)]
            }, block: 6, reason: .insertedBlock),
        Tampering(
            name: "a forged block inserted in the middle, later blocks renumbered and the head moved",
            statements: { chain in
                let forged = AuditChain.seal(
                    after: (2, chain[1].hash), run: chain[1].run, policy: "inactive-customers", policyVersion: 3,
                    createdAtMicroseconds: chain[1].createdAtMicroseconds + 1, records: [])
                return [5, 4, 3].flatMap { sequence in
                    [
                        "UPDATE gallra.audit_block SET sequence = \(sequence + 1) WHERE sequence = \(sequence)",
                        "UPDATE gallra.audit_subject SET block = \(sequence + 1) WHERE block = \(sequence)",
                    ]
                } + [Self.insert(forged), "UPDATE gallra.audit_head SET sequence = 6"]
            }, block: 3, reason: .insertedBlock),
        Tampering(
            name: "two blocks swapped with their records",
            statements: { _ in
                [
                    "UPDATE gallra.audit_block SET sequence = 1000 WHERE sequence = 2",
                    "UPDATE gallra.audit_block SET sequence = 2 WHERE sequence = 3",
                    "UPDATE gallra.audit_block SET sequence = 3 WHERE sequence = 1000",
                    "UPDATE gallra.audit_subject SET block = 1000 WHERE block = 2",
                    "UPDATE gallra.audit_subject SET block = 2 WHERE block = 3",
                    "UPDATE gallra.audit_subject SET block = 3 WHERE block = 1000",
                ]
            }, block: 2, reason: .reorderedBlocks),
        Tampering(
            name: "a block's previous hash edited",
            statements: { _ in ["UPDATE gallra.audit_block SET previous_hash = repeat('c', 64) WHERE sequence = 3"] },
            block: 3, reason: .brokenLink),
        Tampering(
            name: "the head's hash rewritten",
            statements: { _ in ["UPDATE gallra.audit_head SET hash = repeat('f', 64)"] },
            block: 5, reason: .headMismatch),
        Tampering(
            name: "the head row deleted",
            statements: { _ in ["DELETE FROM gallra.audit_head"] },
            block: 5, reason: .headMismatch),
        Tampering(
            name: "records filed under a block that does not exist",
            statements: { _ in
                [
                    """
                    INSERT INTO gallra.audit_subject (block, ordinal, subject_digest, counts)
                    VALUES (9, 1, repeat('d', 64), '[]')
                    """
                ]
            }, block: 9, reason: .insertedRecord, record: 1),
    ]

    static func insert(_ block: AuditBlock) -> String {
        """
        INSERT INTO gallra.audit_block
            (sequence, run, policy, policy_version, created_at, subjects, records_hash, previous_hash, hash)
        VALUES (\(block.sequence), '\(block.run)', '\(block.policy)', \(block.policyVersion),
                timestamptz 'epoch' + \(block.createdAtMicroseconds) * interval '1 microsecond', \(block.subjects),
                '\(block.recordsHash)', '\(block.previousHash)', '\(block.hash)')
        """
    }

    @Test(arguments: tamperings)
    func tamperingIsFoundAtTheFirstBadBlock(_ tampering: Tampering) async throws {
        try await TestDatabase.with { _, connection in
            let chain = try await buildChain(on: connection)
            #expect(try await AuditTrail.verify(on: connection).isIntact)
            try await tamper(tampering.statements(chain), on: connection)
            let result = try await AuditTrail.verify(on: connection)
            let found = try #require(result.firstBreak, "\(tampering.name) goes unnoticed")
            #expect(found.block == tampering.block, "\(found)")
            #expect(found.reason == tampering.reason, "\(found)")
            if let record = tampering.record { #expect(found.record == record, "\(found)") }
            #expect(!result.isIntact)
            // Everything before the first bad block is reported intact.
            let intact = tampering.reason == .headMismatch ? tampering.block : min(tampering.block - 1, 5)
            #expect(result.blocks == Int(intact))
            #expect(result.head?.sequence == (intact > 0 ? intact : nil))
        }
    }

    @Test func aForgedBlockTimeStampedLikeTheRealOneStillBreaksTheChain() async throws {
        // The forged block is sealed over the true previous hash: only the head shows it was not gallra's.
        try await TestDatabase.with { _, connection in
            let chain = try await buildChain(on: connection)
            let forged = AuditChain.seal(
                after: (5, chain[4].hash), run: chain[4].run, policy: "inactive-customers", policyVersion: 3,
                createdAtMicroseconds: chain[4].createdAtMicroseconds, records: Self.records(["999"]))
            try await tamper(
                [
                    Self.insert(forged),
                    """
                    INSERT INTO gallra.audit_subject (block, ordinal, subject_digest, counts)
                    VALUES (6, 1, '\(Self.records(["999"])[0].subjectDigest)',
                            '[{"action": "deleted", "rows": 1, "table": "shop.customer"},
                              {"action": "anonymized", "rows": 5, "table": "shop.order"}]')
                    """,
                ], on: connection)
            let result = try await AuditTrail.verify(on: connection)
            #expect(result.firstBreak?.block == 6)
            #expect(result.firstBreak?.reason == .insertedBlock)
            #expect(result.blocks == 5)
        }
    }

    @Test func aTruncatedChainWithAMatchingHeadIsCaughtByTheHashRecordedElsewhere() async throws {
        try await TestDatabase.with { _, connection in
            let chain = try await buildChain(on: connection)
            let recorded = chain[4].hash  // what the journal logged at the end of the run
            #expect(try await AuditTrail.verify(on: connection, expectingHash: recorded).expected?.foundAt == 5)
            #expect(try await AuditTrail.verify(on: connection, expectingHash: chain[1].hash).isIntact)
            try await tamper(
                [
                    "DELETE FROM gallra.audit_subject WHERE block = 5",
                    "DELETE FROM gallra.audit_block WHERE sequence = 5",
                    "UPDATE gallra.audit_head SET sequence = 4, hash = '\(chain[3].hash)'",
                ], on: connection)
            let plain = try await AuditTrail.verify(on: connection)
            #expect(plain.isIntact, "without an outside copy, a consistent truncation looks intact")
            let result = try await AuditTrail.verify(on: connection, expectingHash: recorded.uppercased())
            #expect(result.firstBreak == nil)
            #expect(result.expected?.foundAt == nil)
            #expect(!result.isIntact)
        }
    }

    @Test func aChainLongerThanAPageVerifiesAndABreakInALaterPageIsFound() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            let run = UUID().uuidString.lowercased()
            let last = try await connection.transaction { connection in
                var last: AuditBlock?
                for block in 1...1200 {
                    last = try await AuditTrail.append(
                        records: Self.records([String(block * 10 + 1), String(block * 10 + 2)]), run: run,
                        policy: "p", policyVersion: 1, on: connection)
                }
                return last
            }
            let result = try await AuditTrail.verify(on: connection, pageSize: 500, recordPageSize: 333)
            #expect(result.isIntact)
            #expect(result.blocks == 1200)
            #expect(result.records == 2400)
            #expect(result.head?.hash == last?.hash)
            #expect(try await AuditTrail.verify(on: connection).isIntact, "the default page sizes")

            try await tamper(
                ["UPDATE gallra.audit_subject SET counts = '[]' WHERE block = 701 AND ordinal = 2"], on: connection)
            let broken = try await AuditTrail.verify(on: connection, pageSize: 500, recordPageSize: 333)
            #expect(broken.firstBreak?.block == 701)
            #expect(broken.firstBreak?.reason == .editedRecord)
            #expect(broken.blocks == 700)
            #expect(broken.records == 1400)
        }
    }

    @Test func verifyDoesNotWaitForABatchInProgress() async throws {
        try await TestDatabase.with { database, connection in
            _ = try await buildChain(blocks: 3, on: connection)
            let writer = try await database.connect()
            // A batch that appends and holds its transaction open while verify runs: verify neither waits
            // for it nor sees it.
            let result = try await writer.transaction { writer in
                try await AuditTrail.append(
                    records: Self.records(["1"]), run: UUID().uuidString, policy: "p", policyVersion: 1, on: writer)
                return try await AuditTrail.verify(on: connection)
            }
            await writer.close()
            #expect(result.isIntact)
            #expect(result.blocks == 3)
            #expect(try await AuditTrail.verify(on: connection).blocks == 4)
        }
    }

    @Test func showListsBlocksWithTheirRowsAndRecords() async throws {
        try await TestDatabase.with { _, connection in
            let chain = try await buildChain(blocks: 3, perBlock: 2, on: connection)
            let newest = try await AuditTrail.show(AuditBlockFilter(limit: 2), on: connection)
            #expect(newest.map(\.block.sequence) == [3, 2])
            #expect(newest.map(\.block) == [chain[2], chain[1]])
            #expect(newest[0].records == nil)
            // Block 3: keys 301 and 302: 1 customer row deleted each; 301 % 7 + 302 % 7 order rows anonymized.
            #expect(newest[0].deleted == 2)
            #expect(newest[0].anonymized == 301 % 7 + 302 % 7)
            #expect(newest[0].retained == 0)

            let oldest = try await AuditTrail.show(
                AuditBlockFilter(policy: "inactive-customers", oldestFirst: true), includeRecords: true,
                on: connection)
            #expect(oldest.map(\.block.sequence) == [1, 2, 3])
            #expect(oldest[0].records == Self.records(["101", "102"]))
            #expect(try await AuditTrail.show(AuditBlockFilter(policy: "other"), on: connection).isEmpty)
            let run = try #require(UUID(uuidString: chain[0].run))
            #expect(try await AuditTrail.show(AuditBlockFilter(run: run), on: connection).count == 3)
            #expect(try await AuditTrail.show(AuditBlockFilter(run: UUID()), on: connection).isEmpty)
            let future = PostgresTimestamp(Date().addingTimeInterval(3600))
            #expect(try await AuditTrail.show(AuditBlockFilter(since: future), on: connection).isEmpty)
        }
    }

    @Test func lookupFindsEveryRecordOfASubject() async throws {
        try await TestDatabase.with { _, connection in
            let chain = try await buildChain(blocks: 2, perBlock: 2, on: connection)
            let run = UUID().uuidString
            _ = try await connection.transaction { connection in
                try await AuditTrail.append(
                    records: Self.records(["202"]), run: run, policy: "second-policy", policyVersion: 7,
                    on: connection)
            }
            let digest = Self.digester.digest(table: "shop.customer", key: "202")
            let entries = try await AuditTrail.lookup(digest: digest, on: connection)
            #expect(entries.map(\.block) == [2, 3])
            #expect(entries[0].ordinal == 2)
            #expect(entries[0].policy == "inactive-customers")
            #expect(entries[0].policyVersion == 3)
            #expect(entries[0].run == chain[1].run)
            #expect(entries[0].createdAtMicroseconds == chain[1].createdAtMicroseconds)
            #expect(entries[1].policy == "second-policy")
            #expect(entries[1].run == run.lowercased())
            #expect(entries[0].counts == Self.records(["202"])[0].counts)
            #expect(try await AuditTrail.lookup(digest: String(repeating: "0", count: 64), on: connection).isEmpty)
        }
    }

    @Test func runsAreListedNewestFirst() async throws {
        try await TestDatabase.with { _, connection in
            try await Schema.migrate(on: connection)
            let first = UUID()
            let second = UUID()
            try await connection.execute(
                """
                INSERT INTO gallra.run (id, mode, trigger, as_of, started_at, finished_at, outcome, counts) VALUES
                    ($1, 'live', 'schedule', '2026-01-01 03:00+00', '2026-01-01 03:00+00', '2026-01-01 03:01+00',
                     'done', '{"inactive-customers": {"processed": 3}}'),
                    ($2, 'live', 'manual', '2026-01-02 03:00+00', '2026-01-02 03:00+00', NULL, 'running', '{}')
                """, [.uuid(first), .uuid(second)])
            let runs = try await AuditTrail.runs(on: connection)
            #expect(runs.map(\.id) == [second, first].map { $0.uuidString.lowercased() })
            #expect(runs[0].finishedAtMicroseconds == nil)
            #expect(runs[1].outcome == "done")
            #expect(runs[1].startedAtMicroseconds == 1_767_236_400_000_000)
            #expect(runs[1].finishedAtMicroseconds == 1_767_236_460_000_000)
            #expect(runs[1].countsJSON.contains("\"processed\": 3"))
            #expect(try await AuditTrail.runs(id: first, on: connection).map(\.trigger) == ["schedule"])
        }
    }
}
