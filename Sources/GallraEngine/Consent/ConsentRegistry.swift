import GallraCore
import GallraPostgres

/// One consent event of a subject, as `gallra.consent_history` returns it.
public struct ConsentEvent: Sendable, Hashable {
    /// What happened: the two values of `gallra.consent_event.event`.
    public enum Kind: String, Sendable, Hashable {
        case granted, revoked
    }

    public var event: Kind
    public var policy: String
    /// The policy version whose terms were accepted (for a grant) or in force (for a revocation).
    public var policyVersion: Int
    /// Microseconds since 1970-01-01 UTC.
    public var recordedAtMicroseconds: Int64
    public var source: String?
    public var evidence: String?
    public var recordedBy: String
}

/// What a call of `gallra.grant_consent` or `gallra.revoke_consent` did.
public struct ConsentRecording: Sendable, Hashable {
    /// The event the call returned: the one it recorded, or the one that already stood (the grant in force, the
    /// last revocation); nil for a revocation of consent never granted.
    public var eventId: Int64?
    /// Whether the call recorded a new event; false when the state it asked for already held.
    public var recorded: Bool
    /// When that event was recorded, in microseconds since 1970-01-01 UTC.
    public var recordedAtMicroseconds: Int64?
}

/// Whether a subject's consent to one policy is in force (`gallra.consent_in_force`).
public struct ConsentInForce: Sendable, Hashable {
    public var policy: String
    /// When the grant in force was recorded (microseconds since 1970-01-01 UTC); nil when none is in force.
    public var grantedAtMicroseconds: Int64?
    /// The version of the policy that grant accepted.
    public var policyVersion: Int?

    public var isInForce: Bool { grantedAtMicroseconds != nil }
}

/// What the registry holds about one subject.
public struct SubjectConsent: Sendable, Hashable {
    /// Per policy, by name: whether consent is in force.
    public var policies: [ConsentInForce]
    /// The events in the order recorded.
    public var events: [ConsentEvent]
}

extension ConsentEvent {
    /// An event from a row with the columns of `gallra.consent_event` (`event`, `policy_version`, `recorded_at`,
    /// `source`, `evidence`, `recorded_by`) and the policy's name in `policyColumn`.
    init(row: PostgresRow, policyColumn: String) throws {
        self.init(
            event: try ConsentRegistry.kind(row.decode("event", as: String.self)),
            policy: try row.decode(policyColumn, as: String.self),
            policyVersion: try row.decode("policy_version", as: Int.self),
            recordedAtMicroseconds: try row.decode("recorded_at", as: PostgresTimestamp.self).microsecondsSince2000
                + AuditTrail.postgresEpochOffset,
            source: try row.decode("source", as: String?.self),
            evidence: try row.decode("evidence", as: String?.self),
            recordedBy: try row.decode("recorded_by", as: String.self))
    }
}

/// Grants and revocations of one policy in one calendar month (UTC).
public struct ConsentMonth: Sendable, Hashable {
    /// `YYYY-MM`.
    public var month: String
    public var granted: Int
    public var revoked: Int
}

/// What `gallra consent list` counts for one policy.
public struct ConsentSummary: Sendable, Hashable {
    public var policy: String
    /// Subjects whose consent to the policy is in force.
    public var inForce: Int
    public var months: [ConsentMonth]
}

/// A consent call the server refused (SQLSTATE class GC): the server's message and hint, never its DETAIL,
/// which names the subject's key.
public struct ConsentRefusal: Error, Sendable, ExitStatusProviding {
    public var sqlState: SQLState
    public var message: String
    public var hint: String?

    public var exitStatus: ExitStatus { .dataError }

    public var description: String {
        guard let hint, !hint.isEmpty else { return message }
        return "\(message). \(hint)"
    }
}

/// The consent registry's SQL interface (`docs/consent.md`), called with bound parameters.
public struct ConsentRegistry: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// Records a grant unless the grant of the policy's latest version is in force already.
    public func grant(
        table: String, key: String, policy: String, source: String?, evidence: String?
    ) async throws -> ConsentRecording {
        try await record(
            "gallra.grant_consent", table: table, key: key, policy: policy, source: source, evidence: evidence)
    }

    /// Records a revocation unless no consent is in force.
    public func revoke(
        table: String, key: String, policy: String, source: String?, evidence: String?
    ) async throws -> ConsentRecording {
        try await record(
            "gallra.revoke_consent", table: table, key: key, policy: policy, source: source, evidence: evidence)
    }

    /// Calls `function` (grant_consent or revoke_consent) in a transaction of its own and reads back what it
    /// returned. The call recorded an event exactly when it returned another than the subject's latest event
    /// before it: the transaction first takes the lock the functions serialise on (the same advisory lock on the
    /// subject and policy, as the registry names them), so no other transaction can record one in between.
    private func record(
        _ function: String, table: String, key: String, policy: String, source: String?, evidence: String?
    ) async throws -> ConsentRecording {
        try await refusing {
            try await connection.transaction { connection in
                let target = try await connection.query(
                    """
                    SELECT t.subject_table, t.subject_key,
                           pg_advisory_xact_lock(
                               1734437987, hashtext(t.subject_table || ' ' || t.subject_key || ' ' || $3)) IS NULL
                    FROM gallra.consent_target('history', $1, $2, $3) AS t
                    """, [.text(table), .text(key), .text(policy)])
                let last = try await connection.query(
                    """
                    SELECT (SELECT e.id FROM gallra.consent_event AS e
                            WHERE e.subject_table = $1 AND e.subject_key = $2 AND e.policy = $3
                            ORDER BY e.ordinal DESC LIMIT 1) AS id
                    """,
                    [
                        .text(try target[0].decode("subject_table", as: String.self)),
                        .text(try target[0].decode("subject_key", as: String.self)), .text(policy),
                    ])
                let before = try last[0].decode("id", as: Int64?.self)
                let call = try await connection.query(
                    "SELECT \(function)($1, $2, $3, $4, $5) AS id",
                    [
                        .text(table), .text(key), .text(policy), source.map { .text($0) } ?? .null,
                        evidence.map { .text($0) } ?? .null,
                    ])
                guard let id = try call[0].decode("id", as: Int64?.self) else {
                    return ConsentRecording(eventId: nil, recorded: false, recordedAtMicroseconds: nil)
                }
                let event = try await connection.query(
                    "SELECT recorded_at FROM gallra.consent_event WHERE id = $1", [.int64(id)])
                return ConsentRecording(
                    eventId: id, recorded: id != before,
                    recordedAtMicroseconds: try event[0].decode("recorded_at", as: PostgresTimestamp.self)
                        .microsecondsSince2000 + AuditTrail.postgresEpochOffset)
            }
        }
    }

    /// Whether the subject's consent to `policy` is in force, as the view `gallra.consent_in_force` says, and since
    /// when. The subject is named as the registry stores it (the policy's subject table, the key as its column
    /// prints it) by the checks the consent functions share.
    public func inForce(table: String, key: String, policy: String) async throws -> ConsentInForce {
        let rows = try await refusing {
            try await connection.query(
                """
                SELECT f.granted_at, f.policy_version
                FROM gallra.consent_target('history', $1, $2, $3) AS t
                LEFT JOIN gallra.consent_in_force AS f
                    ON f.subject_table = t.subject_table AND f.subject_key = t.subject_key AND f.policy = $3
                """, [.text(table), .text(key), .text(policy)])
        }
        guard let row = rows.first, let since = try row.decode("granted_at", as: PostgresTimestamp?.self) else {
            return ConsentInForce(policy: policy, grantedAtMicroseconds: nil, policyVersion: nil)
        }
        return ConsentInForce(
            policy: policy, grantedAtMicroseconds: since.microsecondsSince2000 + AuditTrail.postgresEpochOffset,
            policyVersion: try row.decode("policy_version", as: Int?.self))
    }

    /// The subject's events in the order recorded, for one policy or every policy of its table.
    public func history(table: String, key: String, policy: String?) async throws -> [ConsentEvent] {
        let rows = try await refusing {
            try await connection.query(
                """
                SELECT event, policy_name, policy_version, recorded_at, source, evidence, recorded_by
                FROM gallra.consent_history($1, $2, $3)
                """, [.text(table), .text(key), policy.map { .text($0) } ?? .null])
        }
        return try rows.map { try ConsentEvent(row: $0, policyColumn: "policy_name") }
    }

    /// A subject's history (for one policy, or every policy of its table) and, for every policy in it and for
    /// `policy`, whether consent is in force: read in one snapshot, so that the two agree.
    public func consent(table: String, key: String, policy: String?) async throws -> SubjectConsent {
        try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            let registry = ConsentRegistry(connection: connection)
            let events = try await registry.history(table: table, key: key, policy: policy)
            var names = Set(events.map(\.policy))
            if let policy { names.insert(policy) }
            var policies: [ConsentInForce] = []
            for name in names.sorted() {
                policies.append(try await registry.inForce(table: table, key: key, policy: name))
            }
            return SubjectConsent(policies: policies, events: events)
        }
    }

    /// Subjects with consent in force, and grants and revocations per month, of one stored policy.
    public func summary(policy: String) async throws -> ConsentSummary {
        let known = try await connection.query("SELECT 1 FROM gallra.policy_latest WHERE name = $1", [.text(policy)])
        guard !known.isEmpty else {
            throw ConsentRefusal(
                sqlState: .consentUnknownPolicy, message: "no policy named \(policy) is stored",
                hint: "gallra policy list shows the stored policies; gallra policy apply stores one.")
        }
        let inForce = try await connection.query(
            "SELECT count(*) AS n FROM gallra.consent_in_force WHERE policy = $1", [.text(policy)])
        let months = try await connection.query(
            """
            SELECT to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
                   count(*) FILTER (WHERE event = 'granted') AS granted,
                   count(*) FILTER (WHERE event = 'revoked') AS revoked
            FROM gallra.consent_event WHERE policy = $1
            GROUP BY 1 ORDER BY 1
            """, [.text(policy)])
        return ConsentSummary(
            policy: policy, inForce: try inForce[0].decode("n", as: Int.self),
            months: try months.map {
                ConsentMonth(
                    month: try $0.decode("month", as: String.self), granted: try $0.decode("granted", as: Int.self),
                    revoked: try $0.decode("revoked", as: Int.self))
            })
    }

    /// Turns the server's GC refusals into ``ConsentRefusal``; other errors pass through.
    private func refusing<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresError {
            guard let state = error.sqlState, state.errorClass == .gallraConsent else { throw error }
            throw ConsentRefusal(sqlState: state, message: error.message, hint: error.hint)
        }
    }
}

extension ConsentRegistry {
    /// The event of a history row; the table's CHECK admits no other value, so another is a bug.
    static func kind(_ text: String) throws -> ConsentEvent.Kind {
        guard let kind = ConsentEvent.Kind(rawValue: text) else {
            throw PostgresError(.decoding, "a consent event is neither granted nor revoked")
        }
        return kind
    }
}
