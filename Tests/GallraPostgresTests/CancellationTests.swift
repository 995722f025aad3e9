import GallraTestSupport
import GallraPostgres
import Testing

@Suite("Cancelling statements: cancel(), task cancellation, timeouts")
struct CancellationTests {
    @Test func cancelFromAnotherTaskStopsALongStatement() async throws {
        try await TestDatabase.with { _, connection in
            let running = Task {
                try await connection.query("SELECT pg_sleep(30)")
            }
            try await Task.sleep(for: .milliseconds(300))
            let (outcome, elapsed) = await measure {
                connection.cancel()
                return await running.result
            }
            let error = try #require(outcome.failure(as: PostgresError.self))
            #expect(error.isQueryCanceled)
            #expect(error.sqlState == "57014")
            #expect(error.code == .cancelled)
            #expect(elapsed < .seconds(1))
            #expect(try await connection.query("SELECT 1 AS one")[0, "one"] == .int32(1))
        }
    }

    @Test func taskCancellationCancelsTheStatement() async throws {
        try await TestDatabase.with { _, connection in
            let running = Task {
                try await connection.query("SELECT pg_sleep(30)")
            }
            try await Task.sleep(for: .milliseconds(300))
            let (outcome, elapsed) = await measure {
                running.cancel()
                return await running.result
            }
            let error = try #require(outcome.failure(as: PostgresError.self))
            #expect(error.isQueryCanceled)
            #expect(error.code == .cancelled)
            #expect(elapsed < .seconds(1))
            #expect(await connection.isOpen)
            #expect(try await connection.query("SELECT 2 AS two")[0, "two"] == .int32(2))
        }
    }

    @Test func clientTimeoutCancelsTheStatement() async throws {
        try await TestDatabase.with { _, connection in
            let (outcome, elapsed) = await measure {
                await Result { try await connection.query("SELECT pg_sleep(5)", timeout: .milliseconds(200)) }
            }
            let error = try #require(outcome.failure(as: PostgresError.self))
            #expect(error.isQueryCanceled)
            #expect(error.isClientTimeout)
            #expect(error.code == .timeout)
            #expect(error.description.contains("timeout"))
            #expect(error.sqlState == "57014")
            #expect(elapsed >= .milliseconds(200))
            #expect(elapsed < .seconds(1))
            // A statement that finishes in time is unaffected.
            let quick = try await connection.query("SELECT pg_sleep(0.05), 3 AS three", timeout: .seconds(5))
            #expect(quick[0, "three"] == .int32(3))
        }
    }

    @Test func serverStatementTimeoutIsQueryCanceled() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("SET statement_timeout = '100ms'")
            let (outcome, elapsed) = await measure { await Result { try await connection.query("SELECT pg_sleep(5)") } }
            let error = try #require(outcome.failure(as: PostgresError.self))
            #expect(error.sqlState == "57014")
            #expect(error.isQueryCanceled)
            #expect(!error.isClientTimeout)
            #expect(error.code == .server)
            #expect(elapsed < .seconds(1))
            try await connection.execute("RESET statement_timeout")
            #expect(try await connection.query("SELECT 1 AS one")[0, "one"] == .int32(1))
        }
    }

    /// While two connections wait on the server, the cooperative pool (two threads here) stays free.
    @Test func waitingDoesNotBlockTheCooperativePool() async throws {
        try await TestDatabase.with { database, connection in
            let second = try await database.connect()
            let start = ContinuousClock.now
            async let first: PostgresResult = connection.query("SELECT pg_sleep(1)")
            async let other: PostgresResult = second.query("SELECT pg_sleep(1)")
            // Plain async work that needs pool threads, repeatedly, while both statements run.
            let ticker = Task {
                var ticks = 0
                while ContinuousClock.now - start < .milliseconds(700) {
                    try await Task.sleep(for: .milliseconds(10))
                    ticks += 1
                }
                return ContinuousClock.now - start
            }
            let tickerDone = try await ticker.value
            _ = try await (first, other)
            let elapsed = ContinuousClock.now - start
            #expect(tickerDone < .milliseconds(950), "the ticker must finish while both statements still sleep")
            #expect(elapsed < .milliseconds(1800), "two 1 s sleeps on two connections run concurrently")
            await second.close()
        }
    }
}

extension Result {
    init(catching body: () async throws(Failure) -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }

    func failure<E: Error>(as type: E.Type) -> E? {
        if case .failure(let error) = self { error as? E } else { nil }
    }
}
