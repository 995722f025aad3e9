import GallraTestSupport
import GallraPostgres
import Testing

@Suite("Transactions commit, roll back on any error, and apply isolation and READ ONLY")
struct TransactionTests {
    struct Boom: Error {}

    @Test func commitsWhenTheBodyReturns() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int)")
            let inserted = try await connection.transaction { connection in
                try await connection.execute("INSERT INTO t VALUES (1), (2)")
            }
            #expect(inserted == 2)
            #expect(try await connection.query("SELECT count(*) AS n FROM t")[0, "n"] == .int64(2))
            #expect(await connection.isInTransaction == false)
        }
    }

    @Test func rollsBackWhenTheBodyThrows() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int)")
            await #expect(throws: Boom.self) {
                try await connection.transaction { connection in
                    try await connection.execute("INSERT INTO t VALUES (1)")
                    throw Boom()
                }
            }
            #expect(try await connection.query("SELECT count(*) AS n FROM t")[0, "n"] == .int64(0))
            #expect(await connection.isInTransaction == false)
        }
    }

    @Test func rollsBackWhenTheTaskIsCancelled() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int)")
            let running = Task {
                try await connection.transaction { connection in
                    try await connection.execute("INSERT INTO t VALUES (1)")
                    try await connection.execute("SELECT pg_sleep(30)")
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            running.cancel()
            let outcome = await running.result
            #expect(outcome.failure(as: PostgresError.self)?.code == .cancelled)
            #expect(try await connection.query("SELECT count(*) AS n FROM t")[0, "n"] == .int64(0))
            #expect(await connection.isInTransaction == false)
        }
    }

    @Test func aCaughtStatementErrorStillFailsTheCommit() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
            let error = await #expect(throws: PostgresError.self) {
                try await connection.transaction { connection in
                    try await connection.execute("INSERT INTO t VALUES (1)")
                    _ = try? await connection.execute("INSERT INTO t VALUES (1)")
                }
            }
            #expect(error?.code == .transactionRolledBack)
            #expect(try await connection.query("SELECT count(*) AS n FROM t")[0, "n"] == .int64(0))
        }
    }

    @Test func readOnlyRejectsWrites() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int)")
            let error = await #expect(throws: PostgresError.self) {
                try await connection.transaction(readOnly: true) { connection in
                    #expect(
                        try await connection.query("SHOW transaction_read_only")[0, "transaction_read_only"] == "on")
                    try await connection.execute("INSERT INTO t VALUES (1)")
                }
            }
            #expect(error?.sqlState == "25006")
            #expect(error?.isReadOnlyTransaction == true)
        }
    }

    @Test(arguments: [
        (PostgresConnection.IsolationLevel.readCommitted, "read committed"),
        (.repeatableRead, "repeatable read"), (.serializable, "serializable"),
    ])
    func isolationLevelIsApplied(level: PostgresConnection.IsolationLevel, shown: String) async throws {
        try await TestDatabase.with { _, connection in
            let value = try await connection.transaction(isolation: level) { connection in
                try await connection.query("SHOW transaction_isolation")[0, "transaction_isolation"]
            }
            #expect(value == .text(shown))
        }
    }

    @Test func transactionsDoNotNest() async throws {
        try await TestDatabase.with { _, connection in
            let error = await #expect(throws: PostgresError.self) {
                try await connection.transaction { connection in
                    try await connection.transaction { _ in 1 }
                }
            }
            #expect(error?.code == .clientMisuse)
            #expect(await connection.isInTransaction == false)
        }
    }

    /// Another task's statements wait for the transaction instead of running inside it.
    @Test func otherTasksWaitForTheTransaction() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int)")
            let (started, startedContinuation) = AsyncStream<Void>.makeStream()
            let transaction = Task {
                try await connection.transaction { connection in
                    try await connection.execute("INSERT INTO t VALUES (1)")
                    startedContinuation.yield()
                    try await Task.sleep(for: .milliseconds(300))  // suspends: the actor could run other work
                    throw Boom()
                }
            }
            for await _ in started { break }
            let count = try await connection.query("SELECT count(*) AS n FROM t")[0, "n"]
            #expect(count == .int64(0), "ran after the rollback, not inside the transaction")
            #expect(await transaction.result.failure(as: Boom.self) != nil)
        }
    }
}
