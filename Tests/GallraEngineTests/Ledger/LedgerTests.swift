import Foundation
import GallraCore
@testable import GallraEngine
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

@Suite("The erasure ledger")
struct LedgerTests {
    static let digester = SubjectDigester(key: [UInt8](repeating: 7, count: 32))

    static func records(_ keys: [String]) -> [AuditRecord] {
        keys.map {
            AuditRecord(
                subjectDigest: digester.digest(table: "shop.customer", key: $0),
                counts: [
                    AuditCount(table: "shop.customer", action: .deleted, rows: 1),
                    AuditCount(table: #"shop."odd" table"#, action: .anonymized, rows: 2),
                ])
        }
    }

    /// A fresh ledger path in a directory of its own, removed afterwards.
    static func withLedgerPath<T>(_ body: (String) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gallra-ledger-" + UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await body(directory.appendingPathComponent("db/ledger").path)
    }

    /// A migrated database with policies `p` (over `shop.customer`) and `q` (over `customer`, unqualified, found
    /// through the search path in `public`).
    static func prepare(_ connection: PostgresConnection) async throws {
        try await Schema.migrate(on: connection)
        try await execute(
            [
                "CREATE SCHEMA shop",
                "CREATE TABLE shop.customer (id int PRIMARY KEY, last_seen_at timestamptz)",
                "CREATE TABLE public.customer (id int PRIMARY KEY, last_seen_at timestamptz)",
            ], on: connection)
        let unqualified = policyYAML("q").replacing("table: shop.customer, key: id", with: "table: customer, key: id")
            .replacing("- { table: shop.wishlist_item, delete: true }\n", with: "")
            .replacing("table: shop.customer, delete", with: "table: customer, delete")
        _ = try await PolicyStore(connection: connection).apply([
            (try policy("p"), source: "p.yaml"), (try Policy(parsing: unqualified), source: "q.yaml"),
        ])
    }

    static func appendBlock(
        _ keys: [String], policy: String = "p", on connection: PostgresConnection
    ) async throws -> AuditBlock {
        try await connection.transaction { connection in
            try await AuditTrail.append(
                records: records(keys), run: UUID().uuidString, policy: policy, policyVersion: 1,
                keyCheck: digester.keyCheck, on: connection)
        }
    }

    @Test func everyKindOfLineReadsBackAsWritten() throws {
        let block = LedgerBlock(
            AuditChain.seal(
                after: nil, run: UUID().uuidString.lowercased(), policy: "p", policyVersion: 2,
                createdAtMicroseconds: 1_764_900_000_123_456, records: Self.records(["1", "2"])),
            subjectTable: #"shop."Odd ""Name""#, keyCheck: Self.digester.keyCheck, records: Self.records(["1", "2"]))
        let lines: [LedgerLine] = [
            .header(
                LedgerHeader(
                    database: "shop", systemIdentifier: "7412345678901234567", keyCheck: nil,
                    createdAt: LedgerTime.now())),
            .block(block),
            .restore(
                LedgerRestore(
                    at: LedgerTime.now(), resolution: .replay, databaseHead: .genesis, ledgerHead: block.position,
                    by: "operator", replayed: 2)),
        ]
        for (number, line) in lines.enumerated() {
            #expect(try LedgerParsing.line(Substring(line.jsonText), number: number + 1) == line)
        }
        #expect(lines[1].jsonText.hasPrefix(#"{"kind":"block","sequence":1,"#))
        #expect(LedgerTime.rfc3339(microsecondsSince1970: 1_764_900_000_123_456) == "2025-12-05T02:00:00.123456Z")
        #expect(LedgerTime.rfc3339(microsecondsSince1970: 0) == "1970-01-01T00:00:00.000000Z")
    }

    @Test func aCutLastLineAndAnUnknownKindNameTheirLine() async throws {
        try await Self.withLedgerPath { path in
            let header = LedgerLine.header(
                LedgerHeader(database: "d", systemIdentifier: "1", keyCheck: nil, createdAt: LedgerTime.now()))
            try LedgerFile.append([header], to: path)
            #expect(try LedgerFile.read(path: path).lines.isEmpty)
            let handle = try #require(FileHandle(forWritingAtPath: path))
            handle.seekToEndOfFile()
            handle.write(Data(#"{"kind":"block","sequ"#.utf8))
            try handle.close()
            #expect(
                throws: LedgerError(
                    .malformed, path: path, line: 2,
                    "the last line is cut (it has no newline at its end): the file was truncated")
            ) {
                try LedgerFile.read(path: path)
            }
            let other = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString).path
            defer { try? FileManager.default.removeItem(atPath: other) }
            try Data((header.jsonText + "\n" + #"{"kind":"note"}"# + "\n").utf8).write(to: URL(fileURLWithPath: other))
            let error = try #require(throws: LedgerError.self) { try LedgerFile.read(path: other) }
            #expect(error.line == 2)
            #expect(error.exitStatus == .dataError)
            #expect(error.message.contains("kind note"))
        }
    }

    @Test func catchUpCopiesTheBlocksAfterTheHeadWithTheirSubjectTables() async throws {
        try await TestDatabase.with { database, connection in
            try await Self.prepare(connection)
            try await Self.withLedgerPath { path in
                let first = try await Self.appendBlock(["1", "2"], on: connection)
                let second = try await Self.appendBlock(["3"], policy: "q", on: connection)
                #expect(try await LedgerFile.catchUp(path: path, on: connection) == 2)
                #expect(try await LedgerFile.catchUp(path: path, on: connection) == 0)
                var contents = try LedgerFile.read(path: path)
                #expect(contents.header.database == database.name)
                #expect(contents.header.keyCheck == Self.digester.keyCheck)
                #expect(contents.currentBranch.map(\.auditBlock) == [first, second])
                #expect(contents.currentBranch.map(\.subjectTable) == ["shop.customer", "public.customer"])
                #expect(contents.currentBranch[0].records == Self.records(["1", "2"]))
                #expect(contents.head?.sequence == 2)
                #expect(contents.head?.hash == second.hash)
                let third = try await Self.appendBlock([], on: connection)
                #expect(try await LedgerFile.catchUp(path: path, on: connection) == 1)
                contents = try LedgerFile.read(path: path)
                #expect(contents.head?.hash == third.hash)
                let fork = try await LedgerComparison.forkPoint(of: contents, on: connection)
                #expect(!fork.isRestore)
                #expect(fork.forkPoint == third.position)
                #expect(fork.databaseHead == third.position)
            }
        }
    }

    @Test func anAppendCutShortByACrashIsAppendedAgain() async throws {
        try await TestDatabase.with { _, connection in
            try await Self.prepare(connection)
            try await Self.withLedgerPath { path in
                _ = try await Self.appendBlock(["1"], on: connection)
                try await LedgerFile.catchUp(path: path, on: connection)
                let second = try await Self.appendBlock(["2"], on: connection)
                try await LedgerFile.catchUp(path: path, on: connection)
                // The last line loses its end, as if the machine stopped during the write.
                let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                try bytes.prefix(bytes.count - 20).write(to: URL(fileURLWithPath: path))
                #expect(throws: LedgerError.self) { try LedgerFile.read(path: path) }
                #expect(try await LedgerFile.catchUp(path: path, on: connection) == 1)
                #expect(try LedgerFile.read(path: path).head?.hash == second.hash)
            }
        }
    }

    @Test func catchUpAndTheRestoreCheckReadOnlyTheLedgersEnds() async throws {
        try await TestDatabase.with { _, connection in
            try await Self.prepare(connection)
            try await Self.withLedgerPath { path in
                _ = try await Self.appendBlock(["1"], on: connection)
                _ = try await Self.appendBlock(["2"], on: connection)
                // A last line far longer than one read (1,500 records): its start is found over several chunks.
                let big = try await Self.appendBlock((1...1500).map(String.init), on: connection)
                #expect(try await LedgerFile.catchUp(path: path, on: connection) == 3)
                var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
                #expect(lines.last!.utf8.count > 3 * 65536)
                #expect(try await LedgerFile.databaseHoldsHead(path: path, on: connection))
                // A line between the ends is damaged: catch-up and the check after each run do not read it ...
                lines[2] = "damaged"
                try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
                let next = try await Self.appendBlock(["3"], on: connection)
                #expect(try await LedgerFile.catchUp(path: path, on: connection) == 1)
                #expect(try await LedgerFile.databaseHoldsHead(path: path, on: connection))
                // ... verify and replay, which read it all, do.
                let error = #expect(throws: LedgerError.self) { try LedgerFile.read(path: path) }
                #expect(error?.line == 3)
                lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
                #expect(lines.last!.contains(next.hash))
                #expect(lines[3].contains(big.hash))
            }
        }
    }

    @Test func aRestoredDatabaseIsFoundAndAcceptingItContinuesTheChain() async throws {
        try await TestDatabase.with { _, connection in
            try await Self.prepare(connection)
            try await Self.withLedgerPath { path in
                _ = try await Self.appendBlock(["1"], on: connection)
                let second = try await Self.appendBlock(["2"], on: connection)
                let third = try await Self.appendBlock(["3", "4"], on: connection)
                try await LedgerFile.catchUp(path: path, on: connection)
                // The database goes back to a backup taken after block 2.
                try await execute(
                    [
                        "SET session_replication_role = replica",
                        "DELETE FROM gallra.audit_subject WHERE block = 3",
                        "DELETE FROM gallra.audit_block WHERE sequence = 3",
                        "UPDATE gallra.audit_head SET sequence = 2, hash = '\(second.hash)'",
                        "RESET session_replication_role",
                    ], on: connection)
                var fork = try await LedgerComparison.forkPoint(of: try LedgerFile.read(path: path), on: connection)
                #expect(fork.isRestore)
                #expect(fork.forkPoint == second.position)
                #expect(fork.ledgerHead == third.position)
                #expect(fork.databaseHead == second.position)
                #expect(fork.missingBlocks.map(\.sequence) == [3])
                #expect(fork.missingSubjects == 2)
                // The restored database runs again: its new block 3 is another branch.
                let newThird = try await Self.appendBlock(["5"], on: connection)
                let refused = await #expect(throws: LedgerError.self) {
                    try await LedgerFile.catchUp(path: path, on: connection)
                }
                #expect(refused?.kind == .restoreUnresolved)
                #expect(refused?.exitStatus == .temporaryFailure)
                fork = try await LedgerComparison.forkPoint(of: try LedgerFile.read(path: path), on: connection)
                #expect(fork.forkPoint == second.position)
                #expect(fork.databaseHead == newThird.position)
                let restore = try LedgerFile.appendRestore(to: path, resolution: .accept, fork: fork, by: "ops")
                #expect(restore.databaseHead == second.position)
                #expect(restore.ledgerHead == third.position)
                #expect(try await LedgerFile.catchUp(path: path, on: connection) == 1)
                let contents = try LedgerFile.read(path: path)
                #expect(
                    contents.currentBranch.map(\.hash) == [contents.currentBranch[0].hash, second.hash, newThird.hash])
                #expect(contents.totals.blocks == 4)
                #expect(try await LedgerComparison.forkPoint(of: contents, on: connection).isRestore == false)
                // A second resolution of the same fork is refused: there is none left.
                #expect(throws: LedgerError.self) {
                    try LedgerFile.appendRestore(to: path, resolution: .accept, fork: fork, by: "ops")
                }
            }
        }
    }

    @Test func anotherDatabasesLedgerIsAConfigurationError() async throws {
        try await TestDatabase.with { _, connection in
            try await Self.prepare(connection)
            try await Self.withLedgerPath { path in
                try LedgerFile.append(
                    [
                        .header(
                            LedgerHeader(
                                database: "elsewhere", systemIdentifier: "1", keyCheck: nil, createdAt: LedgerTime.now()
                            ))
                    ],
                    to: path)
                let error = await #expect(throws: LedgerError.self) {
                    try await LedgerFile.catchUp(path: path, on: connection)
                }
                #expect(error?.kind == .otherDatabase)
                #expect(error?.exitStatus == .configuration)
            }
        }
    }
}

@Suite("Verifying a ledger file")
struct LedgerVerificationTests {
    /// A ledger of `count` chained blocks, as lines.
    static func chain(_ count: Int) -> [LedgerLine] {
        var lines: [LedgerLine] = [
            .header(LedgerHeader(database: "d", systemIdentifier: "1", keyCheck: nil, createdAt: LedgerTime.now()))
        ]
        var previous: (sequence: Int64, hash: String)?
        for index in 1...count {
            let records = LedgerTests.records([String(index)])
            let block = AuditChain.seal(
                after: previous, run: UUID().uuidString.lowercased(), policy: "p", policyVersion: 1,
                createdAtMicroseconds: 1_764_900_000_000_000 + Int64(index), records: records)
            previous = (block.sequence, block.hash)
            lines.append(.block(LedgerBlock(block, subjectTable: "shop.customer", keyCheck: nil, records: records)))
        }
        return lines
    }

    static func verify(_ lines: [LedgerLine], expecting hash: String? = nil) throws -> LedgerVerification {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString).path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(lines.map { $0.jsonText + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: path))
        return try LedgerFile.verify(path: path, expectingHash: hash)
    }

    @Test func anIntactLedgerAndOneStartingLater() throws {
        let lines = Self.chain(4)
        let whole = try Self.verify(lines)
        #expect(whole.isIntact)
        #expect(whole.blocks == 4)
        #expect(whole.startsAfter == nil)
        guard case .block(let third) = lines[3] else { return }
        let later = try Self.verify([lines[0]] + lines[3...])
        #expect(later.isIntact)
        #expect(later.blocks == 2)
        #expect(later.startsAfter?.sequence == 2)
        #expect(try Self.verify(lines, expecting: String(third.hash.prefix(12))).expected?.foundAt == 3)
        #expect(try Self.verify(Array(lines[0...2]), expecting: third.hash).isIntact == false)
    }

    @Test func aMissingBlockAndAnEditedFieldAreNamedByLine() throws {
        var lines = Self.chain(4)
        lines.remove(at: 2)
        var result = try Self.verify(lines)
        #expect(result.problem?.line == 3)
        #expect(result.problem?.message == "block 3 follows block 1: block 2 is missing (the ledger was edited)")
        #expect(result.blocks == 1)
        lines = Self.chain(3)
        guard case .block(var block) = lines[2] else { return }
        block.policyVersion = 2
        lines[2] = .block(block)
        result = try Self.verify(lines)
        #expect(result.problem?.line == 3)
        #expect(result.problem?.message.contains("block hash differs") == true)
    }

    @Test func restoreLinesMustNameTheHeadAndABlockOfTheChain() throws {
        let lines = Self.chain(3)
        guard case .block(let first) = lines[1], case .block(let third) = lines[3] else { return }
        let restore = LedgerRestore(
            at: LedgerTime.now(), resolution: .accept, databaseHead: first.position, ledgerHead: third.position,
            by: "ops")
        // The database's new block 2 after the restore, chained to block 1.
        let records = LedgerTests.records(["9"])
        let newSecond = AuditChain.seal(
            after: (first.sequence, first.hash), run: UUID().uuidString.lowercased(), policy: "p", policyVersion: 1,
            createdAtMicroseconds: 1_764_900_000_900_000, records: records)
        let continued = LedgerLine.block(
            LedgerBlock(newSecond, subjectTable: "shop.customer", keyCheck: nil, records: records))
        let result = try Self.verify(lines + [.restore(restore), continued])
        #expect(result.isIntact, "\(String(describing: result.problem))")
        #expect(result.restores == 1)
        #expect(result.head == newSecond.position)
        var wrong = restore
        wrong.ledgerHead = first.position
        #expect(try Self.verify(lines + [.restore(wrong)]).problem?.line == 5)
        // A block after the restore line that continues the old branch is not chained to the database's head.
        #expect(try Self.verify(lines + [.restore(restore), lines[3]]).problem?.line == 6)
    }
}
