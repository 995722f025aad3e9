import GallraPostgres
import GallraTestSupport
import Testing

@Suite("Session guards: a client stalled inside a transaction loses its session and its locks")
struct SessionGuardTests {
    @Test func everySessionGetsTheDefaultIdleInTransactionTimeout() async throws {
        try await TestDatabase.with { database, connection in
            #expect(
                try await connection.query("SHOW idle_in_transaction_session_timeout")[
                    0, "idle_in_transaction_session_timeout"] == "10s")
            // PostgreSQL 14+ on Linux (the test server): a statement whose client is gone stops within a second.
            #expect(
                try await connection.query("SHOW client_connection_check_interval")[
                    0, "client_connection_check_interval"] == "1s")
            let custom = try await PostgresConnection.connect(database.conninfo, idleInTransactionTimeout: .seconds(3))
            #expect(
                try await custom.query("SHOW idle_in_transaction_session_timeout")[
                    0, "idle_in_transaction_session_timeout"] == "3s")
            await custom.close()
            // nil leaves the server's own setting (0, no bound, on the test server).
            let serverSetting = try await PostgresConnection.connect(database.conninfo, idleInTransactionTimeout: nil)
            #expect(
                try await serverSetting.query("SHOW idle_in_transaction_session_timeout")[
                    0, "idle_in_transaction_session_timeout"] == "0")
            await serverSetting.close()
        }
    }

    @Test func aStalledTransactionIsRolledBackAndItsRowLocksFreed() async throws {
        try await TestDatabase.with { database, connection in
            try await connection.execute("CREATE TABLE customer (id int PRIMARY KEY, name text)")
            try await connection.execute("INSERT INTO customer VALUES (1, 'before')")
            let stalled = try await PostgresConnection.connect(database.conninfo, idleInTransactionTimeout: .seconds(1))
            let stalledPID = await stalled.backendPID
            let batch = Task {
                try await stalled.transaction { stalled in
                    try await stalled.execute("UPDATE customer SET name = 'stalled' WHERE id = 1")
                    // The client stops between two statements, holding the row lock.
                    try await Task.sleep(for: .seconds(4))
                    try await stalled.execute("UPDATE customer SET name = 'stalled again' WHERE id = 1")
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(
                try await connection.query("SELECT state FROM pg_stat_activity WHERE pid = $1", [.int32(stalledPID)])[
                    0, "state"] == "idle in transaction")
            // The shop's update waits for the lock, and gets it once the server has ended the stalled session.
            let started = ContinuousClock.now
            try await connection.execute("SET lock_timeout = '5s'")
            try await connection.execute("UPDATE customer SET name = 'shop' WHERE id = 1")
            let waited = ContinuousClock.now - started
            #expect(waited < .seconds(3), "the shop waited \(waited)")
            let outcome = await batch.result
            #expect(outcome.failure(as: PostgresError.self) != nil)
            #expect(await stalled.isOpen == false)
            #expect(try await connection.query("SELECT name FROM customer WHERE id = 1")[0, "name"] == "shop")
            await stalled.close()
        }
    }
}
