import GallraPostgres

/// One register extract as the audit trail records it (`gallra.audit_export`).
public struct AuditExport: Sendable, Hashable, Codable, ChainedRecord {
    /// 1, 2, 3, ... without gaps.
    public var sequence: Int64
    /// When it was written, in microseconds since 1970-01-01 UTC (exactly as stored).
    public var createdAtMicroseconds: Int64
    /// The subject table, schema-qualified.
    public var subjectTable: String
    /// The subject's digest under the audit key; nil when the extract was made without one.
    public var subjectDigest: String?
    /// `json`, `html` or `csv`.
    public var format: String
    /// The database role that read the data.
    public var databaseRole: String
    /// The operating-system user that ran the export.
    public var osUser: String
    public var previousHash: String
    public var hash: String

    /// The hash this record's fields call for, to compare with the stored one.
    public var expectedHash: String {
        AuditChain.exportHash(
            sequence: sequence, createdAtMicroseconds: createdAtMicroseconds, subjectTable: subjectTable,
            subjectDigest: subjectDigest, format: format, databaseRole: databaseRole, osUser: osUser,
            previousHash: previousHash)
    }
}

/// The record of register extracts: appended after each extract is written, listed by `audit lookup`,
/// checked by `audit verify`.
public enum AuditExports {
    /// Appends the record of one extract in a transaction of its own, chained to the previous record. The table
    /// is locked against other writers until commit, so concurrent extracts append one after another.
    @discardableResult
    public static func append(
        subjectTable: String, subjectDigest: String?, format: String, osUser: String,
        on connection: PostgresConnection
    ) async throws -> AuditExport {
        try await connection.transaction { connection in
            try await connection.execute("LOCK TABLE gallra.audit_export IN SHARE ROW EXCLUSIVE MODE")
            let head = try await connection.query(
                """
                SELECT coalesce(max(sequence), 0) AS sequence,
                       coalesce((SELECT hash FROM gallra.audit_export ORDER BY sequence DESC LIMIT 1),
                                repeat('0', 64)) AS hash,
                       clock_timestamp() AS now, current_user::text AS role
                FROM gallra.audit_export
                """)
            guard let row = head.first else {
                throw PostgresError(.decoding, "reading the last record of gallra.audit_export returned no row")
            }
            let now = try row.decode("now", as: PostgresTimestamp.self)
            var record = AuditExport(
                sequence: try row.decode("sequence", as: Int64.self) + 1,
                createdAtMicroseconds: now.microsecondsSince2000 + AuditTrail.postgresEpochOffset,
                subjectTable: subjectTable, subjectDigest: subjectDigest, format: format,
                databaseRole: try row.decode("role", as: String.self), osUser: osUser,
                previousHash: try row.decode("hash", as: String.self), hash: "")
            record.hash = record.expectedHash
            try await connection.execute(
                """
                INSERT INTO gallra.audit_export (sequence, created_at, subject_table, subject_digest, format,
                    database_role, os_user, previous_hash, hash)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                """,
                [
                    .int64(record.sequence), .timestamptz(now), .text(subjectTable),
                    subjectDigest.map { .text($0) } ?? .null, .text(format), .text(record.databaseRole),
                    .text(osUser), .text(record.previousHash), .text(record.hash),
                ])
            return record
        }
    }

    /// The extracts of one subject, oldest first.
    public static func lookup(digest: String, on connection: PostgresConnection) async throws -> [AuditExport] {
        try await read(where: "subject_digest = $1", [.text(digest)], on: connection)
    }

    /// Every record, in chain order: what `audit verify` recomputes. Extracts are rare; they are read at once.
    public static func all(on connection: PostgresConnection) async throws -> [AuditExport] {
        try await read(where: "true", [], on: connection)
    }

    /// The first record that breaks the chain (a gap, a wrong previous hash, a wrong hash), with why; nil when
    /// the chain is intact.
    public static func firstBreak(in records: [AuditExport]) -> (sequence: Int64, problem: String)? {
        AuditChain.firstBreak(in: records, noun: "extract record", missing: "a record")
    }

    private static func read(
        where condition: String, _ parameters: [PostgresValue], on connection: PostgresConnection
    ) async throws -> [AuditExport] {
        let rows = try await connection.query(
            """
            SELECT sequence, created_at, subject_table, subject_digest, format, database_role, os_user,
                   previous_hash, hash
            FROM gallra.audit_export WHERE \(condition) ORDER BY sequence
            """, parameters)
        return try rows.map { row in
            AuditExport(
                sequence: try row.decode("sequence", as: Int64.self),
                createdAtMicroseconds: try row.decode("created_at", as: PostgresTimestamp.self).microsecondsSince2000
                    + AuditTrail.postgresEpochOffset,
                subjectTable: try row.decode("subject_table", as: String.self),
                subjectDigest: try row.decode("subject_digest", as: String?.self),
                format: try row.decode("format", as: String.self),
                databaseRole: try row.decode("database_role", as: String.self),
                osUser: try row.decode("os_user", as: String.self),
                previousHash: try row.decode("previous_hash", as: String.self),
                hash: try row.decode("hash", as: String.self))
        }
    }
}
