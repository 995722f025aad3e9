import GallraPostgres
import GallraTestSupport
import Testing

@Suite("Pipelines send statements at once, run them in order and stop at the first error")
struct PipelineTests {
    @Test func statementsRunInOrderInOneRoundTrip() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            let before = await connection.roundTrips
            let results = try await connection.pipeline([
                PostgresStatement("INSERT INTO t VALUES ($1, $2)", [.int32(1), .text("one")]),
                PostgresStatement("INSERT INTO t VALUES (2, 'two'), (3, 'three')"),
                PostgresStatement("SELECT name FROM t WHERE id >= $1 ORDER BY id", [.int32(2)]),
            ])
            #expect(await connection.roundTrips == before + 1)
            #expect(results.map(\.rowsAffected) == [1, 2, 2])
            #expect(try results[2].map { try $0.decode("name", as: String.self) } == ["two", "three"])
        }
    }

    @Test func theFirstErrorIsThrownAndTheRestDoesNotRun() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
            let error = await #expect(throws: PostgresError.self) {
                try await connection.pipeline([
                    PostgresStatement("INSERT INTO t VALUES (1)"),
                    PostgresStatement("INSERT INTO t VALUES (1)"),
                    PostgresStatement("INSERT INTO t VALUES (2)"),
                ])
            }
            #expect(error?.sqlState == .uniqueViolation)
            #expect(error?.query == "INSERT INTO t VALUES (1)")
            // Outside a transaction block the pipeline is one implicit transaction: the first insert is gone too.
            #expect(try await connection.query("SELECT count(*) AS n FROM t")[0, "n"] == .int64(0))
            // The connection goes on.
            #expect(try await connection.query("SELECT 1 AS one")[0, "one"] == .int32(1))
        }
    }

    @Test func inATransactionAFailedStatementRollsBackToASavepoint() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
            try await connection.transaction { connection in
                try await connection.execute("INSERT INTO t VALUES (1)")
                connection.enqueue("SAVEPOINT part")
                do {
                    try await connection.pipeline([
                        PostgresStatement("INSERT INTO t VALUES (2)"),
                        PostgresStatement("INSERT INTO t VALUES (1)"),
                        PostgresStatement("INSERT INTO t VALUES (3)"),
                    ])
                    Issue.record("the duplicate key was accepted")
                } catch let error as PostgresError {
                    guard error.sqlState == .uniqueViolation else { throw error }
                }
                connection.enqueue("ROLLBACK TO SAVEPOINT part")
                try await connection.execute("INSERT INTO t VALUES (4)")
            }
            let ids = try await connection.query("SELECT id FROM t ORDER BY id").map {
                try $0.decode("id", as: Int.self)
            }
            #expect(ids == [1, 4])
        }
    }

    @Test func queuedStatementsGoWithTheNextAndCommit() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
            let before = await connection.roundTrips
            let counted = try await connection.transaction { connection in
                connection.enqueue("INSERT INTO t VALUES (1)")
                let count = try await connection.query("SELECT count(*) AS n FROM t")[0, "n"]
                connection.enqueue("INSERT INTO t VALUES (2)")
                return count
            }
            #expect(counted == .int64(1))
            // BEGIN, the insert and the count; the second insert and COMMIT.
            #expect(await connection.roundTrips == before + 2)
            #expect(try await connection.query("SELECT count(*) AS n FROM t")[0, "n"] == .int64(2))
        }
    }

    @Test func aQueuedStatementThatFailsFailsTheCommit() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
            let error = await #expect(throws: PostgresError.self) {
                try await connection.transaction { connection in
                    try await connection.execute("INSERT INTO t VALUES (1)")
                    connection.enqueue("INSERT INTO t VALUES (1)")
                }
            }
            #expect(error?.sqlState == .uniqueViolation)
            #expect(try await connection.query("SELECT count(*) AS n FROM t")[0, "n"] == .int64(0))
            #expect(await connection.isInTransaction == false)
        }
    }

    @Test func aTransactionThatSendsNothingSendsNoBegin() async throws {
        try await TestDatabase.with { _, connection in
            let before = await connection.roundTrips
            let open = try await connection.transaction { connection in connection.isInTransaction }
            #expect(open)
            #expect(await connection.roundTrips == before)
            #expect(await connection.isInTransaction == false)
        }
    }

    @Test func aTimeoutCancelsThePipeline() async throws {
        try await TestDatabase.with { _, connection in
            let error = await #expect(throws: PostgresError.self) {
                try await connection.pipeline(
                    [PostgresStatement("SELECT 1"), PostgresStatement("SELECT pg_sleep(30)")],
                    timeout: .milliseconds(300))
            }
            #expect(error?.code == .timeout)
            #expect(error?.sqlState == .queryCanceled)
            let one = try await connection.query("SELECT 1 AS one")[0, "one"]
            #expect(one == .int32(1))
        }
    }

    @Test func parametersPostgreSQLCannotTakeAreRefusedBeforeAnythingIsSent() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            let error = await #expect(throws: PostgresError.self) {
                try await connection.pipeline([
                    PostgresStatement("INSERT INTO t VALUES (1, 'a')"),
                    PostgresStatement("INSERT INTO t VALUES (2, $1)", [.text("a\u{0}b")]),
                ])
            }
            #expect(error?.code == .clientMisuse)
            #expect(try await connection.query("SELECT count(*) AS n FROM t")[0, "n"] == .int64(0))
        }
    }
}
