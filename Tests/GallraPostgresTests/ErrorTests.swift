import GallraCore
import GallraPostgres
import GallraTestSupport
import Testing

struct Classified: Sendable, CustomTestStringConvertible {
    var setup: [String] = []
    let sql: String
    let sqlState: String
    let check: @Sendable (PostgresError) -> Bool
    var testDescription: String { sqlState }
}

@Suite("Errors carry the server's fields and never leak row values in their description")
struct ErrorTests {
    @Test func uniqueViolationNamesTheConstraintButNotTheValue() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE customer (id int8 PRIMARY KEY, email text UNIQUE)")
            try await connection.execute("INSERT INTO customer VALUES (1, $1)", [.text("alice@example.com")])
            let error = await #expect(throws: PostgresError.self) {
                try await connection.execute("INSERT INTO customer VALUES (2, $1)", [.text("alice@example.com")])
            }
            let e = try #require(error)
            #expect(e.code == .server)
            #expect(e.sqlState == "23505")
            #expect(e.isUniqueViolation)
            #expect(e.severity == "ERROR")
            #expect(e.constraintName == "customer_email_key")
            #expect(e.tableName == "customer")
            #expect(e.schemaName == "public")
            #expect(e.detail?.contains("alice@example.com") == true)
            #expect(!e.description.contains("alice@example.com"))
            #expect(!"\(e)".contains("alice"))
            #expect(e.description.contains("23505"))
            #expect(e.description.contains("customer_email_key"))
            #expect(String(reflecting: e).contains("alice@example.com"))
            #expect(!e.isRetryable)
            // The connection is fine after a server error.
            #expect(try await connection.query("SELECT count(*) AS n FROM customer")[0, "n"] == .int64(1))
        }
    }

    @Test func foreignKeyViolation() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE customer (id int8 PRIMARY KEY)")
            try await connection.execute(
                "CREATE TABLE purchase (id int8 PRIMARY KEY, customer_id int8 REFERENCES customer)")
            let error = await #expect(throws: PostgresError.self) {
                try await connection.execute("INSERT INTO purchase VALUES (1, $1)", [.int64(987_654)])
            }
            let e = try #require(error)
            #expect(e.isForeignKeyViolation)
            #expect(e.sqlState == "23503")
            #expect(e.constraintName == "purchase_customer_id_fkey")
            #expect(e.tableName == "purchase")
            #expect(!e.description.contains("987654"))
            #expect(String(reflecting: e).contains("987654"))
        }
    }

    /// Class 22 messages echo the rejected input; the description elides it.
    @Test func dataExceptionMessageDoesNotEchoTheInput() async throws {
        try await TestDatabase.with { _, connection in
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT $1::text::int4", [.text("secret-value")])
            }
            let e = try #require(error)
            #expect(e.sqlState == "22P02")
            #expect(e.message.contains("secret-value"))
            #expect(!e.description.contains("secret-value"))
            #expect(e.description.contains("invalid input syntax for type integer"))
        }
    }

    @Test(arguments: [
        Classified(sql: "SELECT * FROM no_such_table", sqlState: "42P01", check: { $0.isUndefinedTable }),
        Classified(sql: "SELECT no_such_column FROM t", sqlState: "42703", check: { $0.isUndefinedColumn }),
        Classified(sql: "SELEC 1", sqlState: "42601", check: { $0.position == 1 }),
        Classified(sql: "SELECT 1/0", sqlState: "22012", check: { !$0.isRetryable }),
        Classified(
            sql: "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'serialization'; END $$",
            sqlState: "40001", check: { $0.isSerializationFailure && $0.isRetryable }),
        Classified(
            sql: "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01', MESSAGE = 'deadlock'; END $$",
            sqlState: "40P01", check: { $0.isDeadlock && $0.isRetryable }),
        Classified(
            setup: ["SET ROLE password_user"], sql: "SELECT * FROM t", sqlState: "42501",
            check: { $0.isInsufficientPrivilege }),
    ])
    func classification(_ classified: Classified) async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int)")
            for setup in classified.setup { try await connection.execute(setup) }
            let error = await #expect(throws: PostgresError.self) { try await connection.query(classified.sql) }
            let e = try #require(error)
            #expect(e.sqlState?.rawValue == classified.sqlState)
            #expect(classified.check(e))
            #expect(e.query == classified.sql)
        }
    }

    @Test func lockTimeoutIsLockNotAvailableAndRetryable() async throws {
        try await TestDatabase.with { database, connection in
            try await connection.execute("CREATE TABLE t (id int)")
            let other = try await database.connect()
            try await other.execute("SET lock_timeout = '100ms'")
            let outcome = try await connection.transaction { connection in
                try await connection.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                return await Result { try await other.query("SELECT * FROM t") }
            }
            let error = outcome.failure(as: PostgresError.self)
            #expect(error?.isLockNotAvailable == true)
            #expect(error?.isRetryable == true)
            await other.close()
        }
    }

    @Test func closedConnectionSaysSo() async throws {
        try await TestDatabase.with { _, connection in
            await connection.close()
            #expect(await connection.isOpen == false)
            let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
            #expect(error?.code == .connectionClosed)
        }
    }

    /// Which failures mean "the server is not there, connect again later": the daemon waits these out.
    @Test(
        arguments: [
            (PostgresError.Code.connectionFailed, nil, true),
            (.connectionLost, nil, true),
            (.connectionClosed, nil, true),
            (.server, "57P01", true),
            (.server, "57P02", true),
            (.server, "57P03", true),
            (.server, "08006", true),
            (.server, "57014", false),
            (.server, "23505", false),
            (.server, nil, false),
            (.timeout, "57014", false),
            (.cancelled, "57014", false),
            (.clientMisuse, nil, false),
        ] as [(PostgresError.Code, String?, Bool)])
    func serverUnavailable(code: PostgresError.Code, sqlState: String?, unavailable: Bool) {
        let error = PostgresError(code, "message", sqlState: sqlState.map(SQLState.init(rawValue:)))
        #expect(error.isServerUnavailable == unavailable)
    }

    /// The sysexits status a command ends with on each class: unavailable 69, no privilege 77, temporary 75,
    /// anything else a bug (70).
    @Test(
        arguments: [
            (PostgresError.Code.connectionFailed, nil, GallraCore.ExitStatus.unavailable),
            (.connectionLost, nil, .unavailable),
            (.connectionClosed, nil, .unavailable),
            (.server, "57P01", .unavailable),
            (.server, "57P02", .unavailable),
            (.server, "57P03", .unavailable),
            (.server, "08006", .unavailable),
            (.server, "42501", .noPermission),
            (.server, "25006", .temporaryFailure),
            (.server, "57014", .temporaryFailure),
            (.timeout, "57014", .temporaryFailure),
            (.server, "55P03", .temporaryFailure),
            (.server, "40P01", .temporaryFailure),
            (.server, "40001", .temporaryFailure),
            (.transactionRolledBack, "40001", .temporaryFailure),
            (.server, "53100", .temporaryFailure),
            (.server, "53200", .temporaryFailure),
            (.server, "53400", .temporaryFailure),
            (.server, "23505", .software),
            (.server, "42P01", .software),
            (.server, nil, .software),
            (.decoding, nil, .software),
        ] as [(PostgresError.Code, String?, GallraCore.ExitStatus)])
    func exitStatus(code: PostgresError.Code, sqlState: String?, status: GallraCore.ExitStatus) {
        let error = PostgresError(code, "message", sqlState: sqlState.map(SQLState.init(rawValue:)))
        #expect(error.exitStatus == status)
    }

    /// The code is named in the description unless it is the server's own error, and the server is named only
    /// for failures to reach it.
    @Test func descriptionNamesTheCodeAndTheServerOfAConnectionFailure() {
        var failed = PostgresError(.connectionFailed, "could not connect")
        failed.host = "db.internal"
        failed.port = "5433"
        #expect(failed.description == "PostgreSQL [connectionFailed]: could not connect [server db.internal:5433]")
        var timedOut = PostgresError(.timeout, "canceling statement", sqlState: "57014")
        timedOut.severity = "ERROR"
        timedOut.host = "db.internal"
        #expect(timedOut.description == "PostgreSQL ERROR 57014 [timeout]: canceling statement")
        #expect(PostgresError(.server, "boom", sqlState: "XX000").description == "PostgreSQL XX000: boom")
    }
}
