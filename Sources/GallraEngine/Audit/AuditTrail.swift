#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraPolicy
import GallraPostgres

/// Writing the audit trail: one block per batch, appended in the batch's own transaction.
public enum AuditTrail {
    /// Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch.
    static let postgresEpochOffset: Int64 = 946_684_800_000_000

    /// Appends a block sealed over `records` to the chain. Call it inside the batch's transaction: the
    /// head row stays locked until the transaction ends, so concurrent batches append one after another
    /// and a rolled-back batch leaves no block. `keyCheck` names the audit key the records' digests were made
    /// with (``SubjectDigester/keyCheck``).
    @discardableResult
    public static func append(
        records: [AuditRecord],
        run: String,
        policy: String,
        policyVersion: Int,
        keyCheck: String? = nil,
        on connection: isolated PostgresConnection
    ) async throws -> AuditBlock {
        let head = try await connection.query(lockHead)
        let block = try enqueueAppend(
            records: records, after: head, run: run, policy: policy, policyVersion: policyVersion, keyCheck: keyCheck,
            on: connection)
        try await connection.pipeline([])
        return block
    }

    /// Locks the chain's head and reads it, with the time the next block is sealed at.
    static let lockHead = "SELECT sequence, hash, clock_timestamp() AS now FROM gallra.audit_head FOR UPDATE"

    /// Seals a block over `records` after `head` (the result of ``lockHead``, in this transaction) and queues its
    /// statements on `connection`: they go with the next statement the transaction sends, its `COMMIT` in a batch.
    @discardableResult
    static func enqueueAppend(
        records: [AuditRecord], after head: PostgresResult, run: String, policy: String, policyVersion: Int,
        keyCheck: String?, on connection: isolated PostgresConnection
    ) throws -> AuditBlock {
        // The block is sealed over the run id as PostgreSQL prints the stored uuid (lower case), so that
        // `verify`, which recomputes from the stored columns, sees the same text.
        guard let runID = UUID(uuidString: run) else {
            throw PostgresError(.clientMisuse, "the run id given to the audit trail is not a UUID")
        }
        let run = runID.uuidString.lowercased()
        guard let row = head.first else {
            throw PostgresError(.decoding, "gallra.audit_head has no row; run gallra migrate")
        }
        let sequence = try row.decode("sequence", as: Int64.self)
        let previousHash = try row.decode("hash", as: String.self)
        let now = try row.decode("now", as: PostgresTimestamp.self)
        let block = AuditChain.seal(
            after: sequence == 0 ? nil : (sequence, previousHash), run: run, policy: policy,
            policyVersion: policyVersion, createdAtMicroseconds: now.microsecondsSince2000 + postgresEpochOffset,
            records: records)
        connection.enqueue(
            """
            INSERT INTO gallra.audit_block
                (sequence, run, policy, policy_version, created_at, subjects, records_hash, previous_hash, hash,
                 key_check)
            VALUES ($1, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            [
                .int64(block.sequence), .text(run), .text(policy), .int32(Int32(policyVersion)), .timestamptz(now),
                .int32(Int32(records.count)), .text(block.recordsHash), .text(block.previousHash), .text(block.hash),
                keyCheck.map { .text($0) } ?? .null,
            ], prepared: true)
        if !records.isEmpty {
            connection.enqueue(
                """
                INSERT INTO gallra.audit_subject (block, ordinal, subject_digest, counts)
                SELECT $1, ordinal::integer, record->>'subject_digest', record->'counts'
                FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS r(record, ordinal)
                """,
                [.int64(block.sequence), .jsonb(recordsJSON(records))], prepared: true)
        }
        connection.enqueue(
            "UPDATE gallra.audit_head SET sequence = $1, hash = $2", [.int64(block.sequence), .text(block.hash)],
            prepared: true)
        return block
    }

    /// The records as the JSON array the insert unpacks:
    /// `[{"subject_digest": ..., "counts": [{"action": ..., "rows": ..., "table": ...}]}]`. Written directly: a
    /// batch's records are its largest client-side work, and a generic encoder spends most of a batch's client
    /// time on them.
    static func recordsJSON(_ records: [AuditRecord]) -> String {
        // Its length first, then the text straight into the string (``JSONTextWriter``): the batch's largest text.
        let digest: StaticString = #"{"subject_digest":"#
        let counts: StaticString = #","counts":["#
        let action: StaticString = #"{"action":""#
        let rows: StaticString = #"","rows":"#
        let table: StaticString = #","table":"#
        var length = 2 + max(0, records.count - 1)
        for record in records {
            length += digest.utf8CodeUnitCount + JSONTextWriter.stringLength(record.subjectDigest)
            length += counts.utf8CodeUnitCount + 2 + max(0, record.counts.count - 1)
            for count in record.counts {
                length += action.utf8CodeUnitCount + count.action.rawValue.utf8.count + rows.utf8CodeUnitCount
                length += JSONTextWriter.decimalLength(count.rows) + table.utf8CodeUnitCount
                length += JSONTextWriter.stringLength(count.table) + 1
            }
        }
        return JSONTextWriter.text(length: length) { out in
            out.append(UInt8(ascii: "["))
            for (index, record) in records.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(literal: digest)
                out.appendString(record.subjectDigest)
                out.append(literal: counts)
                for (number, count) in record.counts.enumerated() {
                    if number > 0 { out.append(UInt8(ascii: ",")) }
                    out.append(literal: action)
                    out.append(unescaped: count.action.rawValue)
                    out.append(literal: rows)
                    out.appendDecimal(count.rows)
                    out.append(literal: table)
                    out.appendString(count.table)
                    out.append(UInt8(ascii: "}"))
                }
                out.append(literal: "]}")
            }
            out.append(UInt8(ascii: "]"))
        }
    }
}

/// The secret key of the subject digests, read from a file (`audit.key_file`, or the systemd
/// credential `$CREDENTIALS_DIRECTORY/audit-key`).
public struct AuditKey: Sendable {
    /// The least a key may hold: 32 bytes, as HMAC-SHA-256 wants.
    public static let minimumLength = 32

    let bytes: [UInt8]

    /// The digester for subject keys.
    public var digester: SubjectDigester { SubjectDigester(key: bytes) }

    /// A key from its bytes (at least `minimumLength`).
    public init(bytes: [UInt8]) throws(AuditKeyError) {
        guard bytes.count >= Self.minimumLength else {
            throw AuditKeyError(
                "the audit key has \(bytes.count) bytes, at least \(Self.minimumLength) are needed; "
                    + "make one with: head -c 48 /dev/urandom | base64 > /etc/gallra/audit-key")
        }
        self.bytes = bytes
    }

    /// Reads the key file: its bytes without trailing white space (so a base64 or hex line works as it is).
    public static func read(path: String) throws(AuditKeyError) -> AuditKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "it cannot be read" : "it does not exist"
            throw AuditKeyError(
                "cannot read the audit key file \(path): \(reason). Live runs need it to write the audit trail; "
                    + "make one with: head -c 48 /dev/urandom | base64 > \(path); chmod 0400 \(path)")
        }
        var bytes = [UInt8](data)
        while let last = bytes.last, last == 0x0a || last == 0x0d || last == 0x20 || last == 0x09 {
            bytes.removeLast()
        }
        do {
            return try AuditKey(bytes: bytes)
        } catch {
            throw AuditKeyError("\(path): \(error.message)")
        }
    }
}

/// Why the audit key cannot be used.
public struct AuditKeyError: Error, Sendable, CustomStringConvertible {
    public var message: String

    init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

import GallraCore

extension AuditKeyError: ExitStatusProviding {
    /// A missing or short key is the configuration's to fix.
    public var exitStatus: ExitStatus { .configuration }
}
