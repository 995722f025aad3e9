#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore
import GallraPostgres

/// What `AuditTrail.verify` found: how much of the chain holds, where it first breaks, and its head.
public struct AuditVerification: Sendable, Hashable, Codable {
    /// The last block of the chain as verified (its sequence and hash); nil for an empty trail or a break at block 1.
    public struct Head: Sendable, Hashable, Codable {
        public var sequence: Int64
        public var hash: String

        public init(sequence: Int64, hash: String) {
            self.sequence = sequence
            self.hash = hash
        }
    }

    /// Whether the chain passes through a hash recorded elsewhere (`--expect-head`).
    public struct ExpectedHash: Sendable, Hashable, Codable {
        public var hash: String
        /// The block whose hash it is, among the blocks verified intact; nil if none.
        public var foundAt: Int64?
    }

    /// Blocks verified intact, from block 1 on (all of them when the trail is intact).
    public var blocks: Int
    /// Subject records in the blocks verified intact.
    public var records: Int
    /// The last block verified intact.
    public var head: Head?
    /// The first place the chain is broken; nil when every check holds.
    public var firstBreak: AuditBreak?
    /// The outcome of checking for a hash recorded elsewhere, if one was given.
    public var expected: ExpectedHash?
    /// Records of register extracts (`gallra.audit_export`), a chain of their own, verified intact.
    public var exports = 0
    /// Where the chain of extract records first breaks, in a sentence; nil when it holds.
    public var exportBreak: String? = nil
    /// Records of holds and corrections (`gallra.audit_event`), a chain of their own, verified intact.
    public var events = 0
    /// Where the chain of events first breaks, in a sentence; nil when it holds.
    public var eventBreak: String? = nil

    /// The three chains hold, and the blocks pass through the expected hash if one was given.
    public var isIntact: Bool {
        firstBreak == nil && exportBreak == nil && eventBreak == nil && (expected.map { $0.foundAt != nil } ?? true)
    }
}

/// Where and how the audit chain is broken.
public struct AuditBreak: Sendable, Hashable, Codable, CustomStringConvertible {
    /// What is wrong, as far as the stored data tells.
    public enum Reason: String, Sendable, Hashable, Codable, CaseIterable {
        /// A record's digest or counts differ from what the block sealed.
        case editedRecord = "edited_record"
        case deletedRecord = "deleted_record"
        case insertedRecord = "inserted_record"
        /// The block's records are all there, in another order.
        case reorderedRecords = "reordered_records"
        /// A field of the block itself (run, policy, version, time, subjects, hashes) differs from what was sealed.
        case editedBlock = "edited_block"
        case deletedBlock = "deleted_block"
        case insertedBlock = "inserted_block"
        case reorderedBlocks = "reordered_blocks"
        /// The block's previous hash names no block of the trail.
        case brokenLink = "broken_link"
        /// `gallra.audit_head` does not name the last block.
        case headMismatch = "head_mismatch"
    }

    /// The sequence number of the first bad (or missing) block.
    public var block: Int64
    public var reason: Reason
    /// The record's ordinal in its block, when one record is to blame.
    public var record: Int?
    /// What was found, in a sentence (never row data: only numbers and hashes).
    public var detail: String

    public init(block: Int64, reason: Reason, record: Int? = nil, detail: String) {
        self.block = block
        self.reason = reason
        self.record = record
        self.detail = detail
    }

    public var description: String { "block \(block): \(detail)" }
}

/// A subject record as stored: its place, and its counts, or nil when they do not decode (an edit).
struct StoredAuditRecord: Sendable, Hashable {
    var block: Int64
    var ordinal: Int
    var subjectDigest: String
    var counts: [AuditCount]?

    init(block: Int64, ordinal: Int, subjectDigest: String, countsJSON: String) {
        self.block = block
        self.ordinal = ordinal
        self.subjectDigest = subjectDigest
        self.counts = try? JSONDecoder().decode([AuditCount].self, from: Data(countsJSON.utf8))
    }

    /// The record as the chain hashes it; nil when its counts cannot be read.
    var record: AuditRecord? { counts.map { AuditRecord(subjectDigest: subjectDigest, counts: $0) } }
}

/// The pure part of verification: fed the stored blocks in sequence order with their records, it
/// recomputes each block and says where the chain first breaks. It holds one block at a time.
struct AuditChainChecker: Sendable {
    /// Beyond this many records a block is not searched for two swapped records (the search is quadratic).
    static let swapSearchLimit = 64

    /// The last block that checked out.
    private(set) var previous: AuditVerification.Head?
    private(set) var blocks = 0
    private(set) var records = 0

    /// Checks the next block in sequence order. Returns the break, if any; then stop feeding blocks.
    ///
    /// A `.brokenLink` result is as far as this block's data tells: the caller may refine it with
    /// `linkBreak(_:previousHashFoundAt:)` once it knows which block, if any, has that hash.
    mutating func check(_ block: AuditBlock, records stored: [StoredAuditRecord]) -> AuditBreak? {
        let expected = (previous?.sequence ?? 0) + 1
        if block.sequence > expected {
            let missing =
                block.sequence - 1 == expected ? "block \(expected) is" : "blocks \(expected)-\(block.sequence - 1) are"
            return AuditBreak(
                block: expected, reason: .deletedBlock,
                detail: "\(missing) missing (deleted): the next stored block is \(block.sequence)")
        }
        if block.sequence < expected {
            return AuditBreak(
                block: block.sequence, reason: .insertedBlock,
                detail: "a block numbered \(block.sequence) was inserted: the trail starts at block 1")
        }
        let previousHash = previous?.hash ?? AuditChain.genesisHash
        if block.previousHash != previousHash {
            return AuditBreak(
                block: block.sequence, reason: .brokenLink,
                detail: "it is not chained to \(expected == 1 ? "the start of the trail" : "block \(expected - 1)") "
                    + "(its previous hash matches no block)")
        }
        if let recordBreak = checkRecords(of: block, stored) { return recordBreak }
        let recordsHash = block.recordsHash
        let hash = AuditChain.blockHash(
            sequence: block.sequence, run: block.run, policy: block.policy, policyVersion: block.policyVersion,
            createdAtMicroseconds: block.createdAtMicroseconds, subjects: block.subjects, recordsHash: recordsHash,
            previousHash: block.previousHash)
        if hash != block.hash {
            return AuditBreak(
                block: block.sequence, reason: .editedBlock,
                detail: "a field of the block (run, policy, version, time, subjects or a hash) was changed "
                    + "(block hash differs)")
        }
        previous = AuditVerification.Head(sequence: block.sequence, hash: block.hash)
        blocks += 1
        records += stored.count
        return nil
    }

    /// The records' part: ordinals 1...n, n = the block's subjects, and the records hash it sealed.
    private func checkRecords(of block: AuditBlock, _ stored: [StoredAuditRecord]) -> AuditBreak? {
        let decoded = stored.compactMap(\.record)
        if decoded.count == stored.count, AuditChain.recordsHash(decoded) == block.recordsHash {
            // The records are the ones sealed, in their order; their numbering and the block's count must agree.
            if let renumbered = stored.enumerated().first(where: { $0.element.ordinal != $0.offset + 1 }) {
                return AuditBreak(
                    block: block.sequence, reason: .editedRecord, record: renumbered.offset + 1,
                    detail: "subject record \(renumbered.offset + 1) was renumbered \(renumbered.element.ordinal)")
            }
            if stored.count != block.subjects {
                return AuditBreak(
                    block: block.sequence, reason: .editedBlock,
                    detail: "its subjects count was changed to \(block.subjects); it holds \(stored.count) records")
            }
            return nil
        }
        for (index, record) in stored.enumerated() where record.ordinal != index + 1 {
            if record.ordinal > index + 1 {
                return AuditBreak(
                    block: block.sequence, reason: .deletedRecord, record: index + 1,
                    detail: "subject record \(index + 1) was deleted")
            }
            return AuditBreak(
                block: block.sequence, reason: .insertedRecord, record: record.ordinal,
                detail: "a subject record numbered \(record.ordinal) was inserted")
        }
        if stored.count > block.subjects {
            return AuditBreak(
                block: block.sequence, reason: .insertedRecord, record: block.subjects + 1,
                detail: "a subject record was inserted: the block sealed \(block.subjects), it holds \(stored.count)")
        }
        if stored.count < block.subjects {
            return AuditBreak(
                block: block.sequence, reason: .deletedRecord, record: stored.count + 1,
                detail: "a subject record was deleted: the block sealed \(block.subjects), it holds \(stored.count)")
        }
        if let unreadable = stored.first(where: { $0.counts == nil }) {
            return AuditBreak(
                block: block.sequence, reason: .editedRecord, record: unreadable.ordinal,
                detail: "subject record \(unreadable.ordinal) was changed (its counts are not what gallra writes)")
        }
        if let swapped = Self.swappedPair(decoded, sealing: block.recordsHash) {
            return AuditBreak(
                block: block.sequence, reason: .reorderedRecords, record: swapped.0,
                detail: "subject records \(swapped.0) and \(swapped.1) were swapped (records reordered)")
        }
        return AuditBreak(
            block: block.sequence, reason: .editedRecord,
            detail: "a subject record was changed (records hash differs)")
    }

    /// The ordinals of two records whose swap gives back the sealed hash, in blocks small enough to search.
    static func swappedPair(_ records: [AuditRecord], sealing recordsHash: String) -> (Int, Int)? {
        guard records.count <= swapSearchLimit, records.count > 1 else { return nil }
        var candidate = records
        for i in 0..<records.count {
            for j in (i + 1)..<records.count where records[i] != records[j] {
                candidate.swapAt(i, j)
                if AuditChain.recordsHash(candidate) == recordsHash { return (i + 1, j + 1) }
                candidate.swapAt(i, j)
            }
        }
        return nil
    }

    /// Refines a `.brokenLink` at `block` once the block whose hash its previous hash names is known.
    func linkBreak(_ linkBreak: AuditBreak, previousHashFoundAt found: Int64?) -> AuditBreak {
        guard let found else { return linkBreak }
        let expectedPrevious = linkBreak.block - 1
        if found < expectedPrevious {
            return AuditBreak(
                block: found + 1, reason: .insertedBlock,
                detail: found + 1 == expectedPrevious
                    ? "block \(found + 1) was inserted: block \(linkBreak.block) is chained to block \(found)"
                    : "blocks \(found + 1)-\(expectedPrevious) were inserted: block \(linkBreak.block) is chained "
                        + "to block \(found)")
        }
        return AuditBreak(
            block: linkBreak.block, reason: .reorderedBlocks,
            detail: "blocks were reordered: this block is chained to block \(found), which comes after it")
    }

    /// Takes back the blocks after `head` that checked out on their own but turned out to be inserted.
    /// `nil`: none of them is intact.
    mutating func rewind(to head: AuditVerification.Head?, droppingRecords dropped: Int) {
        blocks -= Int((previous?.sequence ?? 0) - (head?.sequence ?? 0))
        records -= dropped
        previous = head
    }

    /// The head row against the last block (`nil` head: the row is missing). Call after the last block.
    func checkHead(_ head: AuditVerification.Head?) -> AuditBreak? {
        let last = previous?.sequence ?? 0
        let lastHash = previous?.hash ?? AuditChain.genesisHash
        guard let head else {
            return AuditBreak(
                block: last, reason: .headMismatch, detail: "the head row (gallra.audit_head) was deleted")
        }
        if head.sequence > last {
            let missing =
                head.sequence == last + 1 ? "block \(head.sequence) is" : "blocks \(last + 1)-\(head.sequence) are"
            return AuditBreak(
                block: last + 1, reason: .deletedBlock,
                detail: "\(missing) missing (deleted): the head says the trail ends at block \(head.sequence)")
        }
        if head.sequence < last {
            return AuditBreak(
                block: head.sequence + 1, reason: .insertedBlock,
                detail: "block \(head.sequence + 1) was added after the head (block \(head.sequence)), not by gallra")
        }
        if head.hash != lastHash {
            return AuditBreak(
                block: last, reason: .headMismatch,
                detail: "the head's hash is not this block's: the head or the block was rewritten")
        }
        return nil
    }
}

extension AuditTrail {
    /// Blocks read per query while verifying.
    public static let verifyPageSize = 500
    /// Subject records read per query while verifying.
    public static let verifyRecordPageSize = 5000

    /// Recomputes the whole chain and reports where it first breaks.
    ///
    /// Reads in one `REPEATABLE READ READ ONLY` transaction, so batches appending meanwhile do not disturb it;
    /// blocks and records are read a page at a time in sequence order, so memory does not grow with the trail.
    /// Checks, block by block: sequence numbers 1, 2, 3, ... without gaps; each block's previous hash is the
    /// hash of the block before; its records are numbered 1...n with n its subjects count and hash to its
    /// records hash; its own hash recomputes. Then the head row names the last block, and no record lies
    /// outside a block.
    ///
    /// - Parameters:
    ///   - expectedHash: a block hash recorded elsewhere (the journal logs the head at each run's end), or a
    ///     prefix of it that only one block's hash starts with; the result says whether the intact chain passes
    ///     through it. A superuser can recompute every hash of a rewritten trail, so a copy kept outside the
    ///     database is what proves it was not.
    ///   - pageSize: blocks read per query.
    ///   - recordPageSize: subject records read per query.
    public static func verify(
        on connection: PostgresConnection, expectingHash expectedHash: String? = nil,
        pageSize: Int = verifyPageSize, recordPageSize: Int = verifyRecordPageSize
    ) async throws -> AuditVerification {
        try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            try await verifySnapshot(
                on: connection, expectedHash: expectedHash?.lowercased(), pageSize: max(pageSize, 1),
                recordPageSize: max(recordPageSize, 1))
        }
    }

    private static func verifySnapshot(
        on connection: isolated PostgresConnection, expectedHash prefix: String?, pageSize: Int, recordPageSize: Int
    ) async throws -> AuditVerification {
        var expectedHash = prefix
        if let prefix, prefix.count < 64 {
            // A prefix stands for the one block whose hash starts with it.
            let matching = try await connection.query(
                "SELECT sequence, hash FROM gallra.audit_block WHERE starts_with(hash, $1) ORDER BY sequence LIMIT 2",
                [.text(prefix)])
            if matching.count > 1 {
                throw AmbiguousHashPrefix(
                    prefix: prefix, blocks: try matching.map { try $0.decode("sequence", as: Int64.self) })
            }
            if let row = matching.first { expectedHash = try row.decode("hash", as: String.self) }
        }
        var checker = AuditChainChecker()
        var records = RecordCursor(pageSize: recordPageSize)
        var foundAt: Int64?
        var after = Int64.min
        var firstBreak: AuditBreak?

        pages: while firstBreak == nil {
            let page = try await connection.query(
                """
                SELECT sequence, run::text AS run, policy, policy_version, created_at, subjects, records_hash,
                       previous_hash, hash
                FROM gallra.audit_block WHERE sequence > $1 ORDER BY sequence LIMIT $2
                """, [.int64(after), .int64(Int64(pageSize))])
            if page.isEmpty { break }
            let blocks = try page.map(decodeBlock)
            let last = blocks[blocks.count - 1].sequence
            for block in blocks {
                let stored = try await records.take(block: block.sequence, upTo: last, on: connection)
                if let orphan = stored.orphans.first {
                    firstBreak = AuditBreak(
                        block: block.sequence, reason: .insertedRecord, record: orphan.ordinal,
                        detail: "a subject record was inserted under block \(orphan.block), which does not exist")
                    break pages
                }
                if var found = checker.check(block, records: stored.records) {
                    if found.reason == .brokenLink {
                        let located = try await connection.query(
                            "SELECT sequence FROM gallra.audit_block WHERE hash = $1", [.text(block.previousHash)])
                        found = checker.linkBreak(
                            found, previousHashFoundAt: try located.first?.decode("sequence", as: Int64.self))
                        if found.reason == .insertedBlock {
                            // The inserted blocks held up on their own; the intact part ends before them.
                            let dropped = try await connection.query(
                                "SELECT count(*) AS n FROM gallra.audit_subject WHERE block >= $1 AND block < $2",
                                [.int64(found.block), .int64(block.sequence)])
                            checker.rewind(
                                to: AuditVerification.Head(sequence: found.block - 1, hash: block.previousHash),
                                droppingRecords: try dropped.first?.decode("n", as: Int.self) ?? 0)
                        }
                    }
                    firstBreak = found
                    break pages
                }
                if block.hash == expectedHash { foundAt = block.sequence }
            }
            after = last
        }

        if firstBreak == nil {
            let head = try await connection.query("SELECT sequence, hash FROM gallra.audit_head")
            firstBreak = checker.checkHead(
                try head.first.map {
                    AuditVerification.Head(
                        sequence: try $0.decode("sequence", as: Int64.self),
                        hash: try $0.decode("hash", as: String.self))
                })
            if let found = firstBreak, found.reason == .insertedBlock {
                // Blocks after the head held up on their own; the intact part ends at the head.
                let intact = try await connection.query(
                    """
                    SELECT b.hash, (SELECT count(*) FROM gallra.audit_subject WHERE block >= $1) AS dropped
                    FROM gallra.audit_block b WHERE b.sequence = $1 - 1
                    """, [.int64(found.block)])
                if found.block == 1 {
                    checker.rewind(to: nil, droppingRecords: checker.records)
                } else if let row = intact.first {
                    checker.rewind(
                        to: AuditVerification.Head(
                            sequence: found.block - 1, hash: try row.decode("hash", as: String.self)),
                        droppingRecords: try row.decode("dropped", as: Int.self))
                }
            }
        }
        if firstBreak == nil {
            let last = checker.previous?.sequence ?? 0
            let stray = try await connection.query(
                """
                SELECT block, ordinal FROM gallra.audit_subject WHERE block > $1 OR block < 1
                ORDER BY block, ordinal LIMIT 1
                """, [.int64(last)])
            if let row = stray.first {
                let block = try row.decode("block", as: Int64.self)
                firstBreak = AuditBreak(
                    block: block, reason: .insertedRecord, record: try row.decode("ordinal", as: Int.self),
                    detail: "a subject record was inserted under block \(block), which does not exist")
            }
        }
        let exports = try await AuditExports.all(on: connection)
        let exportBreak = AuditExports.firstBreak(in: exports)
        let events = try await AuditEvents.all(on: connection)
        let eventBreak = AuditEvents.firstBreak(in: events)
        return AuditVerification(
            blocks: checker.blocks, records: checker.records, head: checker.previous, firstBreak: firstBreak,
            expected: expectedHash.map { AuditVerification.ExpectedHash(hash: $0, foundAt: foundAt) },
            exports: exportBreak.map { Int($0.sequence) - 1 } ?? exports.count, exportBreak: exportBreak?.problem,
            events: eventBreak.map { Int($0.sequence) - 1 } ?? events.count, eventBreak: eventBreak?.problem)
    }

    static func decodeBlock(_ row: PostgresRow) throws -> AuditBlock {
        AuditBlock(
            sequence: try row.decode("sequence", as: Int64.self), run: try row.decode("run", as: String.self),
            policy: try row.decode("policy", as: String.self),
            policyVersion: try row.decode("policy_version", as: Int.self),
            createdAtMicroseconds: try row.decode("created_at", as: PostgresTimestamp.self).microsecondsSince2000
                + postgresEpochOffset,
            subjects: try row.decode("subjects", as: Int.self),
            recordsHash: try row.decode("records_hash", as: String.self),
            previousHash: try row.decode("previous_hash", as: String.self),
            hash: try row.decode("hash", as: String.self))
    }
}

/// Subject records in (block, ordinal) order, read a page at a time by keyset.
private struct RecordCursor {
    private let pageSize: Int
    private var buffer: [StoredAuditRecord] = []
    private var position = 0
    private var after: (block: Int64, ordinal: Int32) = (.min, .min)
    /// Every record with a block up to this one has been read.
    private var exhaustedUpTo = Int64.min

    init(pageSize: Int) {
        self.pageSize = pageSize
    }

    /// The records of `block`, and any before it that belong to no block seen (`orphans`). `upTo` bounds the
    /// page read: the last block of the current page of blocks.
    mutating func take(block: Int64, upTo last: Int64, on connection: isolated PostgresConnection) async throws
        -> (records: [StoredAuditRecord], orphans: [StoredAuditRecord])
    {
        var records: [StoredAuditRecord] = []
        var orphans: [StoredAuditRecord] = []
        while true {
            if position == buffer.count {
                if exhaustedUpTo >= last { break }
                try await fill(upTo: last, on: connection)
                if position == buffer.count { break }
            }
            let record = buffer[position]
            if record.block > block { break }
            if record.block == block { records.append(record) } else { orphans.append(record) }
            position += 1
        }
        return (records, orphans)
    }

    private mutating func fill(upTo last: Int64, on connection: isolated PostgresConnection) async throws {
        let rows = try await connection.query(
            """
            SELECT block, ordinal, subject_digest, counts::text AS counts FROM gallra.audit_subject
            WHERE (block, ordinal) > ($1, $2) AND block <= $3 ORDER BY block, ordinal LIMIT $4
            """,
            [.int64(after.block), .int32(after.ordinal), .int64(last), .int64(Int64(pageSize))])
        buffer = try rows.map { row in
            StoredAuditRecord(
                block: try row.decode("block", as: Int64.self), ordinal: try row.decode("ordinal", as: Int.self),
                subjectDigest: try row.decode("subject_digest", as: String.self),
                countsJSON: try row.decode("counts", as: String.self))
        }
        position = 0
        if let tail = buffer.last { after = (tail.block, Int32(tail.ordinal)) }
        if buffer.count < pageSize { exhaustedUpTo = last }
    }
}

/// `--expect-head` gave a prefix that more than one block's hash starts with.
public struct AmbiguousHashPrefix: Error, Sendable, Hashable, ExitStatusProviding {
    public var prefix: String
    /// The first two blocks whose hashes start with it.
    public var blocks: [Int64]

    public var description: String {
        "the hash prefix \(prefix) matches blocks \(blocks.map(String.init).joined(separator: " and ")); "
            + "give more of the hash (all 64 hexadecimal digits, as the journal's GALLRA_AUDIT_HEAD has it)"
    }

    /// The command line is what to change.
    public var exitStatus: ExitStatus { .usage }
}
