import GallraPostgres

/// The runner lock: one live runner per database, a session-level advisory lock.
extension Engine {
    /// The session-level advisory lock held by the one live runner of a database.
    public static let runnerLockKey: Int64 = 0x6761_6C6C_7261_0002

    /// Takes the runner lock if no other session holds it.
    public static func tryAcquireRunnerLock(on connection: PostgresConnection) async throws -> Bool {
        let result = try await connection.query("SELECT pg_try_advisory_lock($1) AS locked", [.int64(runnerLockKey)])
        return try result.first?.decode("locked", as: Bool.self) ?? false
    }

    /// The server process holding the runner lock of the current database, if any.
    public static func runnerLockHolder(on connection: PostgresConnection) async throws -> Int32? {
        let result = try await connection.query(
            """
            SELECT pid FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND objsubid = 1
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid
            """, [.int64(runnerLockKey)])
        return try result.first?.decode("pid", as: Int32.self)
    }

    /// Marks the live runs left `running` by a gallra that died (killed, or its host lost) as `interrupted`;
    /// their committed batches stay done and audited. Call it only while holding the runner lock: then no
    /// other live run can be in progress. Returns how many runs it closed.
    @discardableResult
    public static func closeAbandonedRuns(on connection: PostgresConnection) async throws -> Int {
        try await connection.execute(
            "UPDATE gallra.run SET outcome = 'interrupted' WHERE mode = 'live' AND outcome = 'running'")
    }
}
