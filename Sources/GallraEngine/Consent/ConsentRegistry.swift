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

    /// Records a grant (idempotent when one is in force); returns the grant's id.
    public func grant(
        table: String, key: String, policy: String, source: String?, evidence: String?
    ) async throws -> Int64 {
        let rows = try await refusing {
            try await connection.query(
                "SELECT gallra.grant_consent($1, $2, $3, $4, $5) AS id",
                [
                    .text(table), .text(key), .text(policy), source.map { .text($0) } ?? .null,
                    evidence.map { .text($0) } ?? .null,
                ])
        }
        return try rows[0].decode("id", as: Int64.self)
    }

    /// Records a revocation; returns its id, or nil when consent was never granted.
    public func revoke(
        table: String, key: String, policy: String, source: String?, evidence: String?
    ) async throws -> Int64? {
        let rows = try await refusing {
            try await connection.query(
                "SELECT gallra.revoke_consent($1, $2, $3, $4, $5) AS id",
                [
                    .text(table), .text(key), .text(policy), source.map { .text($0) } ?? .null,
                    evidence.map { .text($0) } ?? .null,
                ])
        }
        return try rows[0].decode("id", as: Int64?.self)
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
        return try rows.map { row in
            ConsentEvent(
                event: try Self.kind(row.decode("event", as: String.self)),
                policy: try row.decode("policy_name", as: String.self),
                policyVersion: try row.decode("policy_version", as: Int.self),
                recordedAtMicroseconds: try row.decode("recorded_at", as: PostgresTimestamp.self).microsecondsSince2000
                    + AuditTrail.postgresEpochOffset,
                source: try row.decode("source", as: String?.self),
                evidence: try row.decode("evidence", as: String?.self),
                recordedBy: try row.decode("recorded_by", as: String.self))
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
