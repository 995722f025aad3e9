import GallraPostgres

/// How far the processing of erasure requests has come, for a status line and a watchdog.
public struct ErasureProgress: Sendable, Hashable {
    /// The requests taken up so far, the one in hand included.
    public var position: Int
    /// The requests selected for processing.
    public var total: Int
    /// The live run of the request in hand, after each of its batches; nil when a request is taken up.
    public var run: RunProgress?

    public init(position: Int, total: Int, run: RunProgress? = nil) {
        self.position = position
        self.total = total
        self.run = run
    }
}

extension ErasureQueue {
    /// How long until a pending request is next due for an attempt, by the server's clock: a request never tried is
    /// due at its `not_before`; one tried before (the shop held its subject's rows) at its last attempt plus a
    /// backoff of `retry`, doubled per attempt up to `maximum`, and never before its `not_before`. Zero or less:
    /// one is due now. Nil: nothing is pending.
    ///
    /// One read of the pending requests (the partial index `erasure_request_due`): cheap enough for a service to
    /// ask on every notification and at every sweep before it processes anything.
    public static func untilNextAttempt(
        retry: Duration, maximum: Duration, on connection: PostgresConnection
    ) async throws -> Duration? {
        let row = try await connection.query(
            """
            SELECT extract(epoch FROM min(
                       CASE WHEN attempts = 0 THEN not_before
                       ELSE greatest(not_before, coalesce(last_attempt, not_before)
                           + least($1 * power(2::float8, least(attempts - 1, 30)), $2) * interval '1 second')
                       END) - clock_timestamp())::float8 AS wait
            FROM gallra.erasure_request WHERE status = 'pending'
            """, [.float8(seconds(retry)), .float8(seconds(max(maximum, retry)))]
        ).first
        guard let wait = try row?.decode("wait", as: Double?.self) else { return nil }
        return .milliseconds(Int64((wait * 1000).rounded(.up)))
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
