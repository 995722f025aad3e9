import GallraPostgres
import GallraTestSupport
import Testing

@Suite("Prepared statements: prepared once per session, with their first execution, and executed by name")
struct PreparedStatementTests {
    /// The session's prepared statements, as the server lists them.
    func prepared(on connection: PostgresConnection) async throws -> [String] {
        try await connection.query("SELECT statement FROM pg_prepared_statements ORDER BY prepare_time").map {
            try $0.decode("statement", as: String.self)
        }
    }

    @Test func aStatementIsPreparedOnceAndRunsByNameInOneRoundTripEach() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            let insert = "INSERT INTO t VALUES ($1, $2)"
            let before = await connection.roundTrips
            for id in 1...3 {
                try await connection.query(insert, [.int32(Int32(id)), .text("n\(id)")], prepared: true)
            }
            #expect(await connection.roundTrips == before + 3)
            #expect(try await prepared(on: connection) == [insert])
            let names = try await connection.query("SELECT name FROM t ORDER BY id").map {
                try $0.decode("name", as: String.self)
            }
            #expect(names == ["n1", "n2", "n3"])
            // The same text with other parameter types is another statement.
            try await connection.query(insert, [.int64(4), .text("n4")], prepared: true)
            #expect(try await prepared(on: connection).count == 2)
            // Unprepared statements leave no trace.
            try await connection.query("SELECT $1::int AS one", [.int32(1)])
            #expect(try await prepared(on: connection).count == 2)
        }
    }

    @Test func aPipelineAndQueuedStatementsPrepareInTheirOwnRoundTrip() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
            for round in 0..<2 {
                let before = await connection.roundTrips
                try await connection.transaction { connection in
                    connection.enqueue("INSERT INTO t VALUES ($1)", [.int32(Int32(round * 10 + 1))], prepared: true)
                    let results = try await connection.pipeline([
                        PostgresStatement("INSERT INTO t VALUES ($1)", [.int32(Int32(round * 10 + 2))], prepared: true),
                        PostgresStatement("SELECT count(*) AS n FROM t WHERE id > $1", [.int32(0)], prepared: true),
                    ])
                    #expect(results[1][0, "n"] == .int64(Int64(round * 2 + 2)))
                }
                // BEGIN, the queued insert and the pipeline in one round trip; COMMIT in another.
                #expect(await connection.roundTrips == before + 2)
            }
            #expect(try await prepared(on: connection).count == 2)
        }
    }

    @Test func aPreparationThatDidNotRunIsNotRememberedAndIsSentAgain() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
            let insert = "INSERT INTO t VALUES ($1)"
            let error = await #expect(throws: PostgresError.self) {
                try await connection.pipeline([
                    PostgresStatement("SELECT 1 / 0"),
                    PostgresStatement(insert, [.int32(1)], prepared: true),
                ])
            }
            #expect(error?.sqlState?.errorClass == .dataException)
            #expect(try await prepared(on: connection).isEmpty)
            try await connection.query(insert, [.int32(1)], prepared: true)
            try await connection.query(insert, [.int32(2)], prepared: true)
            #expect(try await prepared(on: connection) == [insert])
            #expect(try await connection.query("SELECT count(*) AS n FROM t")[0, "n"] == .int64(2))
        }
    }

    @Test func anErrorInThePreparedTextIsTheStatementsError() async throws {
        try await TestDatabase.with { _, connection in
            let text = "SELECT nothing FROM nowhere WHERE id = $1"
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query(text, [.int32(1)], prepared: true)
            }
            #expect(error?.sqlState == .undefinedTable)
            #expect(error?.query == text)
            let statements = try await prepared(on: connection)
            #expect(statements.isEmpty)
        }
    }

    @Test func aPreparedStatementOutlivesARolledBackTransaction() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
            let insert = "INSERT INTO t VALUES ($1)"
            await #expect(throws: PostgresError.self) {
                try await connection.transaction { connection in
                    try await connection.query(insert, [.int32(1)], prepared: true)
                    try await connection.query("SELECT 1 / 0")
                }
            }
            try await connection.query(insert, [.int32(1)], prepared: true)
            #expect(try await prepared(on: connection) == [insert])
            #expect(try await connection.query("SELECT count(*) AS n FROM t")[0, "n"] == .int64(1))
        }
    }

    @Test func aStatementWhoseResultChangedWithTheSchemaIsPreparedAgainAfterItsError() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
            try await connection.execute("INSERT INTO t VALUES (1)")
            let select = "SELECT * FROM t WHERE id = $1"
            #expect(try await connection.query(select, [.int32(1)], prepared: true).columns.count == 1)
            try await connection.execute("ALTER TABLE t ADD COLUMN name text DEFAULT 'one'")
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query(select, [.int32(1)], prepared: true)
            }
            #expect(error?.sqlState == .featureNotSupported)
            let row = try await connection.query(select, [.int32(1)], prepared: true)
            #expect(try row.first?.decode("name", as: String.self) == "one")
        }
    }
}
