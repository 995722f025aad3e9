#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import GallraCore
import GallraPolicy
import GallraPostgres

/// A place in the audit chain: a block's sequence number and hash (sequence 0 and the genesis hash: before the
/// first block).
public struct LedgerPosition: Sendable, Hashable, Codable, CustomStringConvertible {
    public var sequence: Int64
    public var hash: String

    public init(sequence: Int64, hash: String) {
        self.sequence = sequence
        self.hash = hash
    }

    /// Before the first block.
    public static let genesis = LedgerPosition(sequence: 0, hash: AuditChain.genesisHash)

    /// `block 12 (3fa9c0d1e2b4)`, or `the start of the trail`.
    public var description: String {
        sequence == 0 ? "the start of the trail" : "block \(sequence) (\(hash.prefix(12)))"
    }
}

/// The first line of a ledger: which database it is the ledger of.
public struct LedgerHeader: Sendable, Hashable {
    /// The format this code writes and reads.
    public static let currentFormat = 1

    public var format: Int
    /// `current_database()` of the database whose audit trail the ledger copies.
    public var database: String
    /// `pg_control_system()`'s `system_identifier` of its cluster, as text. Advisory: a restore into a new
    /// cluster (pg_dump, pg_restore) changes it; the database name and the chain decide.
    public var systemIdentifier: String
    /// The audit key's check (``SubjectDigester/keyCheck``) when the ledger was created; nil without a key.
    public var keyCheck: String?
    /// RFC 3339, UTC, microseconds.
    public var createdAt: String

    public init(
        format: Int = currentFormat, database: String, systemIdentifier: String, keyCheck: String?, createdAt: String
    ) {
        self.format = format
        self.database = database
        self.systemIdentifier = systemIdentifier
        self.keyCheck = keyCheck
        self.createdAt = createdAt
    }
}

/// One audit block with its records, as the ledger keeps it: the fields the chain hashes, the subject table the
/// records' digests were made with, and the audit key's check.
public struct LedgerBlock: Sendable, Hashable, Codable {
    public var sequence: Int64
    /// The run's id (lower-case UUID).
    public var run: String
    public var policy: String
    public var policyVersion: Int
    /// The table text the subject digests were made with (``SubjectDigester/digest(table:key:)``): the policy
    /// version's subject table, schema-qualified, in identifier syntax.
    public var subjectTable: String
    /// When the batch ran, in microseconds since 1970-01-01 UTC (as hashed).
    public var createdAtMicroseconds: Int64
    public var subjects: Int
    public var recordsHash: String
    public var previousHash: String
    public var hash: String
    /// The audit key's check the digests were made with (nil for blocks written before gallra recorded it).
    public var keyCheck: String?
    public var records: [AuditRecord]

    public init(
        sequence: Int64, run: String, policy: String, policyVersion: Int, subjectTable: String,
        createdAtMicroseconds: Int64, subjects: Int, recordsHash: String, previousHash: String, hash: String,
        keyCheck: String?, records: [AuditRecord]
    ) {
        self.sequence = sequence
        self.run = run
        self.policy = policy
        self.policyVersion = policyVersion
        self.subjectTable = subjectTable
        self.createdAtMicroseconds = createdAtMicroseconds
        self.subjects = subjects
        self.recordsHash = recordsHash
        self.previousHash = previousHash
        self.hash = hash
        self.keyCheck = keyCheck
        self.records = records
    }

    /// A block of the audit trail with its records.
    public init(_ block: AuditBlock, subjectTable: String, keyCheck: String?, records: [AuditRecord]) {
        self.init(
            sequence: block.sequence, run: block.run, policy: block.policy, policyVersion: block.policyVersion,
            subjectTable: subjectTable, createdAtMicroseconds: block.createdAtMicroseconds, subjects: block.subjects,
            recordsHash: block.recordsHash, previousHash: block.previousHash, hash: block.hash, keyCheck: keyCheck,
            records: records)
    }

    /// The block as the audit trail stores it (without records).
    public var auditBlock: AuditBlock {
        AuditBlock(
            sequence: sequence, run: run, policy: policy, policyVersion: policyVersion,
            createdAtMicroseconds: createdAtMicroseconds, subjects: subjects, recordsHash: recordsHash,
            previousHash: previousHash, hash: hash)
    }

    /// Its place in the chain.
    public var position: LedgerPosition { LedgerPosition(sequence: sequence, hash: hash) }
}

/// An operator's resolution of a restore: the ledger's blocks after `databaseHead` up to `ledgerHead` are a branch
/// the restored database lost (kept as evidence); the blocks after this line continue the chain from `databaseHead`.
public struct LedgerRestore: Sendable, Hashable {
    public enum Resolution: String, Sendable, Hashable, Codable, CaseIterable {
        /// `gallra ledger replay` processed the lost subjects again.
        case replay
        /// `gallra ledger accept`: the operator took the restored database as it is.
        case accept
    }

    /// RFC 3339, UTC, microseconds.
    public var at: String
    public var resolution: Resolution
    /// The last block the restored database and the ledger share (the fork point): the chain continues from it.
    public var databaseHead: LedgerPosition
    /// The ledger's head when the restore was resolved: the end of the lost branch.
    public var ledgerHead: LedgerPosition
    /// The operating-system user who resolved it.
    public var by: String
    /// Subjects processed again (replay only).
    public var replayed: Int?

    public init(
        at: String, resolution: Resolution, databaseHead: LedgerPosition, ledgerHead: LedgerPosition, by: String,
        replayed: Int? = nil
    ) {
        self.at = at
        self.resolution = resolution
        self.databaseHead = databaseHead
        self.ledgerHead = ledgerHead
        self.by = by
        self.replayed = replayed
    }
}

/// One line of a ledger file.
public enum LedgerLine: Sendable, Hashable {
    case header(LedgerHeader)
    case block(LedgerBlock)
    case restore(LedgerRestore)

    /// The line's JSON text, without its newline: fields in a fixed order, `kind` first.
    public var jsonText: String {
        var out = JSONLineWriter()
        switch self {
        case .header(let header):
            out.field("kind", string: "header")
            out.field("format", number: header.format)
            out.field("database", string: header.database)
            out.field("system_identifier", string: header.systemIdentifier)
            out.field("key_check", string: header.keyCheck)
            out.field("created_at", string: header.createdAt)
        case .block(let block):
            out.field("kind", string: "block")
            out.field("sequence", number: block.sequence)
            out.field("run", string: block.run)
            out.field("policy", string: block.policy)
            out.field("policy_version", number: block.policyVersion)
            out.field("subject_table", string: block.subjectTable)
            out.field("created_at_us", number: block.createdAtMicroseconds)
            out.field("created_at", string: LedgerTime.rfc3339(microsecondsSince1970: block.createdAtMicroseconds))
            out.field("subjects", number: block.subjects)
            out.field("records_hash", string: block.recordsHash)
            out.field("previous_hash", string: block.previousHash)
            out.field("hash", string: block.hash)
            out.field("key_check", string: block.keyCheck)
            out.key("records")
            out.text += "["
            for (index, record) in block.records.enumerated() {
                if index > 0 { out.text += "," }
                var item = JSONLineWriter()
                item.field("digest", string: record.subjectDigest)
                item.key("counts")
                item.text += "["
                for (number, count) in record.counts.enumerated() {
                    if number > 0 { item.text += "," }
                    var entry = JSONLineWriter()
                    entry.field("table", string: count.table)
                    entry.field("action", string: count.action.rawValue)
                    entry.field("rows", number: count.rows)
                    item.text += entry.closed
                }
                item.text += "]"
                out.text += item.closed
            }
            out.text += "]"
        case .restore(let restore):
            out.field("kind", string: "restore")
            out.field("at", string: restore.at)
            out.field("resolution", string: restore.resolution.rawValue)
            out.key("database_head")
            out.text += Self.position(restore.databaseHead)
            out.key("ledger_head")
            out.text += Self.position(restore.ledgerHead)
            out.field("by", string: restore.by)
            if let replayed = restore.replayed { out.field("replayed", number: replayed) }
        }
        return out.closed
    }

    private static func position(_ position: LedgerPosition) -> String {
        var out = JSONLineWriter()
        out.field("sequence", number: position.sequence)
        out.field("hash", string: position.hash)
        return out.closed
    }
}

/// Writes one JSON object member by member, in the order given.
private struct JSONLineWriter {
    var text = "{"
    private var first = true

    mutating func key(_ name: String) {
        if !first { text += "," }
        first = false
        text += JSONValue.string(name).canonicalText + ":"
    }

    mutating func field(_ name: String, string value: String?) {
        key(name)
        text += value.map { JSONValue.string($0).canonicalText } ?? "null"
    }

    mutating func field(_ name: String, number value: some BinaryInteger) {
        key(name)
        text += String(value)
    }

    var closed: String { text + "}" }
}

/// Times as the ledger writes them.
public enum LedgerTime {
    /// RFC 3339 in UTC with microseconds: `2026-11-29T03:00:00.000042Z`.
    public static func rfc3339(microsecondsSince1970 microseconds: Int64) -> String {
        let since2000 = microseconds - AuditTrail.postgresEpochOffset
        let fraction = since2000 - since2000.floorDivided(by: 1_000_000) * 1_000_000
        let whole = PostgresTimestamp(microsecondsSince2000: since2000 - fraction)
        return whole.description.replacing(" ", with: "T") + "." + pad6(fraction) + "Z"
    }

    /// Now, as `rfc3339`.
    public static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return rfc3339(microsecondsSince1970: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000)
    }

    private static func pad6(_ value: Int64) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }
}

extension AuditBlock {
    /// Its place in the chain.
    public var position: LedgerPosition { LedgerPosition(sequence: sequence, hash: hash) }
}
