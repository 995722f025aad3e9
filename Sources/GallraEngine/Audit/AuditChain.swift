import Crypto
import GallraPolicy

/// The audit trail's hash chain: each batch writes one block holding a record per subject it
/// processed; a block's hash covers its records and the previous block's hash, so editing,
/// deleting, inserting or reordering any record or block breaks every hash after it.
///
/// Hashes are SHA-256 over an unambiguous encoding: every field is written as
/// `<byte length>:<bytes>\n`, after a version tag, so no two different blocks encode alike.
public enum AuditChain {
    /// The `previous hash` of the first block.
    public static let genesisHash = String(repeating: "0", count: 64)

    /// The hash of a block's records, in their order.
    public static func recordsHash(_ records: [AuditRecord]) -> String {
        var encoder = FieldEncoder(tag: "gallra-audit-records-v1")
        // A batch's counts name a few tables and actions, each many times: their fields are encoded once (kept in
        // parallel arrays, searched by index, so that a search copies nothing).
        var tables: [String] = []
        var actions: [AuditCount.Action] = []
        var fields: [[UInt8]] = []
        encoder.append(records.count)
        for record in records {
            encoder.append(record.subjectDigest)
            encoder.append(record.counts.count)
            for count in record.counts {
                var kind = 0
                while kind < tables.count && (actions[kind] != count.action || tables[kind] != count.table) {
                    kind += 1
                }
                if kind == tables.count {
                    tables.append(count.table)
                    actions.append(count.action)
                    fields.append(FieldEncoder.encoded(count.table, count.action.rawValue))
                }
                encoder.append(encoded: fields[kind])
                encoder.append(count.rows)
            }
        }
        return encoder.hexDigest()
    }

    /// The hash that seals a block: its own fields, its records' hash and the previous block's hash.
    public static func blockHash(
        sequence: Int64,
        run: String,
        policy: String,
        policyVersion: Int,
        createdAtMicroseconds: Int64,
        subjects: Int,
        recordsHash: String,
        previousHash: String
    ) -> String {
        var encoder = FieldEncoder(tag: "gallra-audit-block-v1")
        encoder.append(String(sequence))
        encoder.append(run)
        encoder.append(policy)
        encoder.append(policyVersion)
        encoder.append(String(createdAtMicroseconds))
        encoder.append(subjects)
        encoder.append(recordsHash)
        encoder.append(previousHash)
        return encoder.hexDigest()
    }

    /// A new block after `previous` (nil for the first block), sealed over `records`.
    public static func seal(
        after previous: (sequence: Int64, hash: String)?,
        run: String,
        policy: String,
        policyVersion: Int,
        createdAtMicroseconds: Int64,
        records: [AuditRecord]
    ) -> AuditBlock {
        let sequence = (previous?.sequence ?? 0) + 1
        let previousHash = previous?.hash ?? genesisHash
        let recordsHash = recordsHash(records)
        let hash = blockHash(
            sequence: sequence, run: run, policy: policy, policyVersion: policyVersion,
            createdAtMicroseconds: createdAtMicroseconds, subjects: records.count, recordsHash: recordsHash,
            previousHash: previousHash)
        return AuditBlock(
            sequence: sequence, run: run, policy: policy, policyVersion: policyVersion,
            createdAtMicroseconds: createdAtMicroseconds, subjects: records.count, recordsHash: recordsHash,
            previousHash: previousHash, hash: hash)
    }
}

extension AuditChain {
    /// The hash that seals a record of a register extract (`gallra.audit_export`): its fields and the previous
    /// record's hash. Extracts have a chain of their own, so that reading data never waits on a batch's lock.
    public static func exportHash(
        sequence: Int64,
        createdAtMicroseconds: Int64,
        subjectTable: String,
        subjectDigest: String?,
        format: String,
        databaseRole: String,
        osUser: String,
        previousHash: String
    ) -> String {
        var encoder = FieldEncoder(tag: "gallra-audit-export-v1")
        encoder.append(String(sequence))
        encoder.append(String(createdAtMicroseconds))
        encoder.append(subjectTable)
        // A missing digest is a field of its own kind: no digest text is empty.
        encoder.append(subjectDigest ?? "")
        encoder.append(format)
        encoder.append(databaseRole)
        encoder.append(osUser)
        encoder.append(previousHash)
        return encoder.hexDigest()
    }

    /// The hash of one record of `gallra.audit_event` (a hold placed or released, a correction): SHA-256 over its
    /// fields, length-prefixed, and the previous event's hash. A chain of its own, like the extracts'.
    public static func eventHash(
        sequence: Int64,
        createdAtMicroseconds: Int64,
        kind: String,
        subjectTable: String,
        subjectDigest: String?,
        detail: String,
        databaseRole: String,
        osUser: String,
        previousHash: String
    ) -> String {
        var encoder = FieldEncoder(tag: "gallra-audit-event-v1")
        encoder.append(String(sequence))
        encoder.append(String(createdAtMicroseconds))
        encoder.append(kind)
        encoder.append(subjectTable)
        encoder.append(subjectDigest ?? "")
        encoder.append(detail)
        encoder.append(databaseRole)
        encoder.append(osUser)
        encoder.append(previousHash)
        return encoder.hexDigest()
    }
}

/// A record of one of the chains beside the blocks' (extracts, events): its place, the hash it was chained to, its
/// own hash, and the hash its fields call for.
protocol ChainedRecord {
    var sequence: Int64 { get }
    var previousHash: String { get }
    var hash: String { get }
    var expectedHash: String { get }
}

extension AuditChain {
    /// The first record of `records` (read in sequence order) that breaks its chain: a gap, a wrong previous hash, a
    /// wrong hash, with why in words that call each record a `noun` ("event") and a missing one `missing` ("an event").
    static func firstBreak<Record: ChainedRecord>(
        in records: [Record], noun: String, missing: String
    ) -> (sequence: Int64, problem: String)? {
        var previous = (sequence: Int64(0), hash: genesisHash)
        for record in records {
            if record.sequence != previous.sequence + 1 {
                return (
                    record.sequence,
                    "\(noun) \(record.sequence) follows \(previous.sequence): \(missing) is missing or was inserted"
                )
            }
            if record.previousHash != previous.hash {
                return (record.sequence, "\(noun) \(record.sequence) is not chained to the \(noun) before it")
            }
            if record.hash != record.expectedHash {
                return (record.sequence, "\(noun) \(record.sequence) was changed: its hash does not match")
            }
            previous = (record.sequence, record.hash)
        }
        return nil
    }
}

/// One block of the audit trail: what one batch did, sealed into the chain.
public struct AuditBlock: Sendable, Hashable, Codable {
    /// 1, 2, 3, ... without gaps.
    public var sequence: Int64
    /// The run's id.
    public var run: String
    public var policy: String
    public var policyVersion: Int
    /// When the batch ran, in microseconds since 1970-01-01 UTC (exactly as stored).
    public var createdAtMicroseconds: Int64
    /// How many subject records the block holds.
    public var subjects: Int
    public var recordsHash: String
    public var previousHash: String
    public var hash: String

    public init(
        sequence: Int64, run: String, policy: String, policyVersion: Int, createdAtMicroseconds: Int64,
        subjects: Int, recordsHash: String, previousHash: String, hash: String
    ) {
        self.sequence = sequence
        self.run = run
        self.policy = policy
        self.policyVersion = policyVersion
        self.createdAtMicroseconds = createdAtMicroseconds
        self.subjects = subjects
        self.recordsHash = recordsHash
        self.previousHash = previousHash
        self.hash = hash
    }

    /// The hash this block's fields and records call for, to compare with the stored one.
    public func expectedHash(records: [AuditRecord]) -> (recordsHash: String, hash: String) {
        let recordsHash = AuditChain.recordsHash(records)
        let hash = AuditChain.blockHash(
            sequence: sequence, run: run, policy: policy, policyVersion: policyVersion,
            createdAtMicroseconds: createdAtMicroseconds, subjects: records.count, recordsHash: recordsHash,
            previousHash: previousHash)
        return (recordsHash, hash)
    }
}

/// What happened to one subject in a batch: its digest and the rows acted on per table.
public struct AuditRecord: Sendable, Hashable, Codable {
    /// HMAC-SHA-256 (hex) of the subject table and key under the audit key; never the key itself.
    public var subjectDigest: String
    /// Rows per table and action, sorted by table then action.
    public var counts: [AuditCount]

    public init(subjectDigest: String, counts: [AuditCount]) {
        self.subjectDigest = subjectDigest
        self.counts = counts.sorted(by: AuditCount.recordOrder)
    }

    /// A record whose `counts` are in ``AuditCount/recordOrder`` already, each table and action once.
    init(subjectDigest: String, orderedCounts counts: [AuditCount]) {
        self.subjectDigest = subjectDigest
        self.counts = counts
    }
}

/// Rows of one table that one action touched for one subject.
public struct AuditCount: Sendable, Hashable, Codable {
    public enum Action: String, Sendable, Hashable, Codable, CaseIterable {
        case deleted
        case anonymized
        /// Reached from the subject but kept because rows that do not expire still use it.
        case retained
    }

    /// The schema-qualified table.
    public var table: String
    public var action: Action
    public var rows: Int

    public init(table: String, action: Action, rows: Int) {
        self.table = table
        self.action = action
        self.rows = rows
    }

    /// The order of a record's counts: by table, then action.
    static func recordOrder(_ left: AuditCount, _ right: AuditCount) -> Bool {
        (left.table, left.action.rawValue) < (right.table, right.action.rawValue)
    }
}

/// Subject digests: HMAC-SHA-256 of `table:key` under the secret audit key, so the trail proves
/// what happened to a subject without holding the subject's key in clear.
public struct SubjectDigester: Sendable {
    /// HMAC state after the key: each digest copies it (a value, its hash state copied on write), so the padded key
    /// is compressed once per run rather than once per subject.
    private let keyed: HMAC<SHA256>

    /// `key` is the secret from the audit key file; at least 32 bytes.
    public init(key: [UInt8]) {
        keyed = HMAC<SHA256>(key: SymmetricKey(data: key))
    }

    /// Names the key without revealing it: the first 16 hex digits of HMAC-SHA-256 of `gallra audit key check`
    /// under it. Each audit block keeps it (`gallra.audit_block.key_check`), so that a lookup tells a key that made
    /// none of the records from a subject that was never processed.
    public var keyCheck: String {
        var hmac = keyed
        hmac.update(data: Array("gallra audit key check".utf8))
        return String(Digest.hex(hmac.finalize()).prefix(16))
    }

    /// The digest of subject `key` of `table` (schema-qualified, as the plan names it).
    public func digest(table: String, key subjectKey: String) -> String {
        // Its bytes read in place: iterating the code itself goes through its storage byte by byte.
        authenticationCode(table: table, key: subjectKey).withUnsafeBytes { Digest.hex($0) }
    }

    /// The digest of subject `key` of `table` as its 32 bytes: ``digest(table:key:)`` is their hex.
    public func digestValue(table: String, key subjectKey: String) -> SubjectDigestValue {
        authenticationCode(table: table, key: subjectKey).withUnsafeBytes { SubjectDigestValue(bytes: $0) }
    }

    private func authenticationCode(table: String, key subjectKey: String) -> HMAC<SHA256>.MAC {
        var message: [UInt8] = []
        message.reserveCapacity(table.utf8.count + 1 + subjectKey.utf8.count)
        message.append(contentsOf: table.utf8)
        message.append(0x3a)
        message.append(contentsOf: subjectKey.utf8)
        var hmac = keyed
        hmac.update(data: message)
        return hmac.finalize()
    }
}

/// Length-prefixed fields: `<byte length>:<bytes>\n` each, after a version tag, hashed with SHA-256 as they come
/// (a batch's records in pieces of ``chunk`` bytes, not in one buffer as large as they are).
private struct FieldEncoder {
    private var bytes: [UInt8]
    private var hash = SHA256()
    /// How many bytes are gathered before they are hashed.
    static let chunk = 16 * 1024

    init(tag: String) {
        bytes = Array(tag.utf8) + [0x0a]
    }

    mutating func append(_ text: String) {
        bytes.appendField(text)
        flushIfFull()
    }

    /// The number as its decimal text, `String(number)`, without making the string.
    mutating func append(_ number: Int) {
        bytes.appendDecimal(JSONTextWriter.decimalLength(number))
        bytes.append(0x3a)
        bytes.appendDecimal(number)
        bytes.append(0x0a)
        flushIfFull()
    }

    /// Fields encoded apart (``encoded(_:)``), appended as they are.
    mutating func append(encoded fields: [UInt8]) {
        bytes.append(contentsOf: fields)
        flushIfFull()
    }

    /// `texts` as fields, without a tag: to append to an encoder many times.
    static func encoded(_ texts: String...) -> [UInt8] {
        var bytes: [UInt8] = []
        for text in texts { bytes.appendField(text) }
        return bytes
    }

    /// SHA-256 (hex) of the tag and every field.
    mutating func hexDigest() -> String {
        hash.update(data: bytes)
        bytes = []
        return Digest.hex(hash.finalize())
    }

    private mutating func flushIfFull() {
        guard bytes.count >= Self.chunk else { return }
        hash.update(data: bytes)
        bytes.removeAll(keepingCapacity: true)
    }
}

extension [UInt8] {
    /// Appends `text` as a field: `<byte length>:<bytes>\n`.
    fileprivate mutating func appendField(_ text: String) {
        appendDecimal(text.utf8.count)
        append(0x3a)
        append(utf8: text)
        append(0x0a)
    }

    /// Appends `number` in decimal, as `String(number)` writes it.
    fileprivate mutating func appendDecimal(_ number: Int) {
        if number < 0 { append(UInt8(ascii: "-")) }
        var magnitude = number.magnitude
        guard magnitude >= 10 else {
            append(UInt8(ascii: "0") + UInt8(magnitude))
            return
        }
        // The digits from the last, into a buffer as long as the longest (20), then appended at once.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = digits.count
            while magnitude > 0 {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            }
            append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    /// Appends the UTF-8 bytes of `text` as one copy (appending its `utf8` view goes byte by byte).
    fileprivate mutating func append(utf8 text: String) {
        var text = text
        text.withUTF8 { append(contentsOf: $0) }
    }
}
