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

    /// Takes the runner lock, waiting up to `patience` for a holder that is on its way out.
    ///
    /// A gallra killed in the middle of a statement leaves a server process that goes on until it notices its
    /// client is gone (within a second where `client_connection_check_interval` exists, else at the statement's
    /// end) and exits, releasing the lock; a rerun started at once would otherwise find the lock taken. So while the holder runs a statement (or is no longer listed in `pg_stat_activity`, being
    /// torn down), the lock is tried again every `interval`, up to `patience`. A holder idle between statements
    /// (a live service, a run between batches) has a live client: that is not waited for.
    public static func acquireRunnerLock(
        on connection: PostgresConnection, patience: Duration = .seconds(5), interval: Duration = .milliseconds(100)
    ) async throws -> Bool {
        let deadline = ContinuousClock.now + patience
        var idleSeen = 0
        while true {
            if try await tryAcquireRunnerLock(on: connection) { return true }
            guard ContinuousClock.now < deadline else { return false }
            switch try await runnerLockHolderState(on: connection) {
            case .some("idle"):
                // Seen idle twice in a row: its client is alive and waiting, so the lock will not come free.
                idleSeen += 1
                if idleSeen >= 2 { return false }
            default:
                idleSeen = 0
            }
            try await Task.sleep(for: interval)
        }
    }

    /// The `pg_stat_activity` state of the runner lock's holder; nil when nobody holds it or the holder is no
    /// longer listed.
    static func runnerLockHolderState(on connection: PostgresConnection) async throws -> String? {
        guard let pid = try await runnerLockHolder(on: connection) else { return nil }
        let result = try await connection.query(
            "SELECT state FROM pg_stat_activity WHERE pid = $1", [.int32(pid)])
        return try result.first?.decode("state", as: String?.self) ?? nil
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
