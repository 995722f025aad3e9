import GallraPostgres

/// One thing a person did to one subject outside a run, as the audit trail records it (`gallra.audit_event`): a
/// hold placed or released, a correction.
public struct AuditEvent: Sendable, Hashable, Codable, ChainedRecord {
    /// What happened.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case holdPlaced = "hold_placed"
        case holdReleased = "hold_released"
        case correction
    }

    /// 1, 2, 3, ... without gaps.
    public var sequence: Int64
    /// When, in microseconds since 1970-01-01 UTC (exactly as stored).
    public var createdAtMicroseconds: Int64
    public var kind: Kind
    /// The subject table, schema-qualified.
    public var subjectTable: String
    /// The subject's digest under the audit key; nil when done without one.
    public var subjectDigest: String?
    /// A JSON object with what the event is about (a hold's id and reason, a correction's tables and columns),
    /// never a subject's key or a value of its data.
    public var detail: String
    /// The database role that did it.
    public var databaseRole: String
    /// The operating-system user that ran gallra.
    public var osUser: String
    public var previousHash: String
    public var hash: String

    /// The hash this event's fields call for, to compare with the stored one.
    public var expectedHash: String {
        AuditChain.eventHash(
            sequence: sequence, createdAtMicroseconds: createdAtMicroseconds, kind: kind.rawValue,
            subjectTable: subjectTable, subjectDigest: subjectDigest, detail: detail, databaseRole: databaseRole,
            osUser: osUser, previousHash: previousHash)
    }
}

/// The chained record of holds and corrections: appended in the transaction that makes the change, listed by
/// `audit lookup`, checked by `audit verify`.
public enum AuditEvents {
    /// Appends one event, chained to the previous one, in the caller's transaction: the event commits with the
    /// change it records, or neither does. The table is locked against other writers until that commit, so
    /// concurrent events append one after another.
    @discardableResult
    public static func append(
        _ kind: AuditEvent.Kind, subjectTable: String, subjectDigest: String?, detail: String, osUser: String,
        inTransactionOn connection: PostgresConnection
    ) async throws -> AuditEvent {
        try await connection.execute("LOCK TABLE gallra.audit_event IN SHARE ROW EXCLUSIVE MODE")
        let head = try await connection.query(
            """
            SELECT coalesce(max(sequence), 0) AS sequence,
                   coalesce((SELECT hash FROM gallra.audit_event ORDER BY sequence DESC LIMIT 1),
                            repeat('0', 64)) AS hash,
                   clock_timestamp() AS now, current_user::text AS role
            FROM gallra.audit_event
            """)
        guard let row = head.first else {
            throw PostgresError(.decoding, "reading the last record of gallra.audit_event returned no row")
        }
        let now = try row.decode("now", as: PostgresTimestamp.self)
        var event = AuditEvent(
            sequence: try row.decode("sequence", as: Int64.self) + 1,
            createdAtMicroseconds: now.microsecondsSince2000 + AuditTrail.postgresEpochOffset, kind: kind,
            subjectTable: subjectTable, subjectDigest: subjectDigest, detail: detail,
            databaseRole: try row.decode("role", as: String.self), osUser: osUser,
            previousHash: try row.decode("hash", as: String.self), hash: "")
        event.hash = event.expectedHash
        try await connection.execute(
            """
            INSERT INTO gallra.audit_event (sequence, created_at, kind, subject_table, subject_digest, detail,
                database_role, os_user, previous_hash, hash)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            [
                .int64(event.sequence), .timestamptz(now), .text(kind.rawValue), .text(subjectTable),
                subjectDigest.map { .text($0) } ?? .null, .text(detail), .text(event.databaseRole), .text(osUser),
                .text(event.previousHash), .text(event.hash),
            ])
        return event
    }

    /// The events of one subject, oldest first.
    public static func lookup(digest: String, on connection: PostgresConnection) async throws -> [AuditEvent] {
        try await read(where: "subject_digest = $1", [.text(digest)], on: connection)
    }

    /// Every event, in chain order: what `audit verify` recomputes. Events are rare; they are read at once.
    public static func all(on connection: PostgresConnection) async throws -> [AuditEvent] {
        try await read(where: "true", [], on: connection)
    }

    /// The first event that breaks the chain (a gap, a wrong previous hash, a wrong hash), with why; nil when the
    /// chain is intact.
    public static func firstBreak(in events: [AuditEvent]) -> (sequence: Int64, problem: String)? {
        AuditChain.firstBreak(in: events, noun: "event", missing: "an event")
    }

    private static func read(
        where condition: String, _ parameters: [PostgresValue], on connection: PostgresConnection
    ) async throws -> [AuditEvent] {
        let rows = try await connection.query(
            """
            SELECT sequence, created_at, kind, subject_table, subject_digest, detail, database_role, os_user,
                   previous_hash, hash
            FROM gallra.audit_event WHERE \(condition) ORDER BY sequence
            """, parameters)
        return try rows.map { row in
            let kind = try row.decode("kind", as: String.self)
            guard let known = AuditEvent.Kind(rawValue: kind) else {
                throw PostgresError(.decoding, "gallra.audit_event holds an event of unknown kind \(kind)")
            }
            return AuditEvent(
                sequence: try row.decode("sequence", as: Int64.self),
                createdAtMicroseconds: try row.decode("created_at", as: PostgresTimestamp.self).microsecondsSince2000
                    + AuditTrail.postgresEpochOffset,
                kind: known,
                subjectTable: try row.decode("subject_table", as: String.self),
                subjectDigest: try row.decode("subject_digest", as: String?.self),
                detail: try row.decode("detail", as: String.self),
                databaseRole: try row.decode("database_role", as: String.self),
                osUser: try row.decode("os_user", as: String.self),
                previousHash: try row.decode("previous_hash", as: String.self),
                hash: try row.decode("hash", as: String.self))
        }
    }
}
