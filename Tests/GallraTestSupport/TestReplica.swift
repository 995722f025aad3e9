import Foundation
import GallraPostgres
import Testing

/// The streaming standby of the test server that `make test` starts (`scripts/pg.sh replica`; its conninfo in
/// `GALLRA_TEST_REPLICA`). Its `application_name` on the primary is its `cluster_name`, ``name``.
public enum TestReplica {
    /// The standby's conninfo; nil when the tests run without `make test`.
    public static var conninfo: String? {
        ProcessInfo.processInfo.environment["GALLRA_TEST_REPLICA"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public static let skipNote = "GALLRA_TEST_REPLICA is not set: no streaming standby (scripts/test.sh starts one)"

    /// Its `application_name` on the primary (`cluster_name` in scripts/pg.sh).
    public static let name = "gallra_test_replica"

    public struct NotConfigured: Error, CustomStringConvertible {
        public var description: String { TestReplica.skipNote }
    }

    /// A connection to the standby.
    public static func connect() async throws -> PostgresConnection {
        guard let conninfo else { throw NotConfigured() }
        return try await PostgresConnection.connect(conninfo)
    }

    /// Runs `body` with replay paused on the standby and resumes it afterwards, also when `body` throws. One test
    /// at a time (an advisory lock on the primary), so that tests run in parallel do not resume each other's pause.
    public static func withReplayPaused<T>(_ body: () async throws -> T) async throws -> T {
        let primary = try await TestServer.admin()
        try await primary.execute("SELECT pg_advisory_lock(7449354471678738500)")
        let standby = try await connect()
        do {
            try await standby.execute("SELECT pg_wal_replay_pause()")
            // A pause takes effect at the next record replayed: write records until the standby says it has
            // paused, so that everything the body writes stays unreplayed.
            var state = ""
            for _ in 0..<100 where state != "paused" {
                try await primary.execute("SELECT pg_logical_emit_message(false, 'gallra-test', 'pause')")
                try await Task.sleep(for: .milliseconds(100))
                state =
                    try await standby.query("SELECT pg_get_wal_replay_pause_state()::text AS state").first?.decode(
                        "state", as: String.self) ?? ""
            }
            guard state == "paused" else {
                throw PostgresError(.server, "the test standby did not pause replay within 10 s (state: \(state))")
            }
            let result = try await body()
            try await standby.execute("SELECT pg_wal_replay_resume()")
            await standby.close()
            await primary.close()
            return result
        } catch {
            _ = try? await standby.execute("SELECT pg_wal_replay_resume()")
            await standby.close()
            await primary.close()
            throw error
        }
    }

    /// Resumes replay on the standby (inside ``withReplayPaused(_:)``, to let a held-back run finish).
    public static func resume() async throws {
        let standby = try await connect()
        try await standby.execute("SELECT pg_wal_replay_resume()")
        await standby.close()
    }
}
