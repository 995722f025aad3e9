#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore
import GallraPolicy
import GallraPostgres

/// The erasure request queue as operators see it: recording a request (through `gallra.request_erasure`, the
/// function the shop calls), listing, showing and cancelling requests.
public enum ErasureQueue {
    /// One row of `gallra.erasure_request`.
    public struct Request: Sendable, Hashable {
        public var id: Int64
        public var subjectTable: String
        /// The key while pending; nil once gallra has replaced it by ``subjectDigest``.
        public var subjectKey: String?
        public var subjectDigest: String?
        public var reason: String?
        public var requestedAt: PostgresTimestamp
        public var requestedBy: String
        public var notBefore: PostgresTimestamp
        public var status: ErasureOutcome.Status
        public var decidedAt: PostgresTimestamp?
        public var decidedBy: String?
        public var run: String?
        public var counts: [ErasureOutcome.Count]
        public var refusal: String?
        public var attempts: Int
        public var lastAttempt: PostgresTimestamp?
        /// Whether `not_before` had passed when the row was read.
        public var isDue: Bool

        /// The outcome this row reports as it stands.
        func outcome(digest: String) -> ErasureOutcome {
            ErasureOutcome(
                id: id, subjectTable: subjectTable, subjectDigest: digest, status: status, counts: counts,
                refusal: refusal, refusalKind: Engine.refusalKind(refusal), run: run, attempts: attempts,
                notBefore: status == .pending ? notBefore.iso8601Milliseconds : nil)
        }
    }

    static let columns = """
        id, subject_table, subject_key, subject_digest, reason, requested_at, requested_by, not_before, status,
        decided_at, decided_by, run::text AS run, counts::text AS counts, refusal, attempts, last_attempt,
        not_before <= clock_timestamp() AS due
        """

    /// Request `id`, or nil when none has it.
    public static func read(_ id: Int64, on connection: PostgresConnection) async throws -> Request? {
        try await connection.query(
            "SELECT \(columns) FROM gallra.erasure_request WHERE id = $1", [.int64(id)]
        ).first.map(request)
    }

    /// The requests with `status` (every one when nil), newest first, at most `limit`.
    public static func list(
        status: ErasureOutcome.Status?, limit: Int = 1000, on connection: PostgresConnection
    ) async throws -> [Request] {
        try await connection.query(
            """
            SELECT \(columns) FROM gallra.erasure_request
            WHERE ($1::text IS NULL OR status = $1) ORDER BY id DESC LIMIT $2
            """, [status.map { .text($0.rawValue) } ?? .null, .int64(Int64(max(limit, 0)))]
        ).map(request)
    }

    /// When the earliest pending request becomes due (now or in the past when one is due already); nil when none is
    /// pending. The service sleeps no longer than this before its next sweep.
    public static func nextDue(on connection: PostgresConnection) async throws -> PostgresTimestamp? {
        try await connection.query(
            "SELECT min(not_before) AS next FROM gallra.erasure_request WHERE status = 'pending'"
        ).first?.decode("next", as: PostgresTimestamp?.self)
    }

    /// Records a request through `gallra.request_erasure` (the shop's function: it normalises the key through the
    /// key column's type and keeps one pending request per subject) and returns its id.
    ///
    /// - Throws: `PostgresError` with the function's SQLSTATEs (`GC002` no policy over the table, `GC003` a key
    ///   that is not a value of the key column, `GC005`/`GC006` a bad reason or window).
    public static func request(
        table: String, key: String, reason: String?, after: RetentionPeriod?, on connection: PostgresConnection
    ) async throws -> Int64 {
        let row = try await refusing {
            try await connection.query(
                "SELECT gallra.request_erasure($1, $2, $3, $4::interval) AS id",
                [
                    .text(table), .text(key), reason.map { .text($0) } ?? .null,
                    after.map { .interval($0.postgresInterval) } ?? .null,
                ]
            ).first
        }
        guard let row else { throw PostgresError(.decoding, "gallra.request_erasure returned no row") }
        return try row.decode("id", as: Int64.self)
    }

    /// Cancels a pending request through `gallra.cancel_erasure`.
    ///
    /// - Throws: `PostgresError` `GC010` (no such request) or `GC011` (already done or refused).
    public static func cancel(_ id: Int64, on connection: PostgresConnection) async throws {
        _ = try await refusing { try await connection.execute("SELECT gallra.cancel_erasure($1)", [.int64(id)]) }
    }

    /// Turns the queue functions' GC refusals into ``ErasureQueueRefusal``; other errors pass through.
    private static func refusing<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresError {
            guard let state = error.sqlState, state.errorClass == .gallraConsent else { throw error }
            throw ErasureQueueRefusal(sqlState: state, message: error.message, hint: error.hint)
        }
    }

    private static func request(_ row: PostgresRow) throws -> Request {
        let counts = try row.decode("counts", as: String?.self).map {
            try JSONDecoder().decode([ErasureOutcome.Count].self, from: Data($0.utf8))
        }
        guard let status = ErasureOutcome.Status(rawValue: try row.decode("status", as: String.self)) else {
            throw PostgresError(.decoding, "gallra.erasure_request.status holds an unknown status")
        }
        return Request(
            id: try row.decode("id", as: Int64.self), subjectTable: try row.decode("subject_table", as: String.self),
            subjectKey: try row.decode("subject_key", as: String?.self),
            subjectDigest: try row.decode("subject_digest", as: String?.self),
            reason: try row.decode("reason", as: String?.self),
            requestedAt: try row.decode("requested_at", as: PostgresTimestamp.self),
            requestedBy: try row.decode("requested_by", as: String.self),
            notBefore: try row.decode("not_before", as: PostgresTimestamp.self), status: status,
            decidedAt: try row.decode("decided_at", as: PostgresTimestamp?.self),
            decidedBy: try row.decode("decided_by", as: String?.self), run: try row.decode("run", as: String?.self),
            counts: counts ?? [], refusal: try row.decode("refusal", as: String?.self),
            attempts: try row.decode("attempts", as: Int.self),
            lastAttempt: try row.decode("last_attempt", as: PostgresTimestamp?.self),
            isDue: try row.decode("due", as: Bool.self))
    }
}

/// A call of the queue's SQL functions the server refused (SQLSTATE class GC, docs/requests.md): the server's
/// message and hint, never its DETAIL.
public struct ErasureQueueRefusal: Error, Sendable, ExitStatusProviding {
    public var sqlState: SQLState
    public var message: String
    public var hint: String?

    /// 66 for an unknown request (GC010), 78 for a table no policy covers (GC002), 65 for a decided request
    /// (GC011), 64 for a key, reason or window that is not right (GC003, GC005, GC006).
    public var exitStatus: ExitStatus {
        switch sqlState.rawValue {
        case "GC010": .noInput
        case "GC002": .configuration
        case "GC011": .dataError
        default: .usage
        }
    }

    public var description: String {
        guard let hint, !hint.isEmpty else { return message }
        return "\(message). \(hint)"
    }
}

extension ErasureQueue {
    /// Sets the request gauges of ``RunMetrics`` from the queue as it stands: one aggregate over the pending
    /// requests (the partial index `erasure_request_due` holds them, and they are few), read at the end of a run.
    public static func recordMetrics(on connection: PostgresConnection) async throws {
        let row = try await connection.query(
            """
            SELECT count(*) AS pending,
                   coalesce(extract(epoch FROM clock_timestamp() - min(requested_at)), 0)::float8 AS oldest
            FROM gallra.erasure_request WHERE status = 'pending'
            """
        ).first
        RunMetrics.requests(
            pending: try row?.decode("pending", as: Int.self) ?? 0,
            oldestAge: try row?.decode("oldest", as: Double.self) ?? 0)
    }
}
