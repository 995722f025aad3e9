import GallraTestSupport
import Foundation
import GallraCore
import GallraPostgres
import Logging
import Testing

@Suite("Connecting, identifiers, notices, lost connections")
struct ConnectionTests {
    @Test func connectsAndReportsItsTarget() async throws {
        try await TestDatabase.with { database, connection in
            #expect(await connection.isOpen)
            #expect(await connection.database == database.name)
            #expect(await connection.user == "postgres")
            #expect(await connection.port == (try TestServer.setting("port")))
            #expect(await connection.host == (try TestServer.setting("host")))
            #expect(await connection.serverVersion >= 150_000)
            #expect(await connection.parameterStatus("server_version")?.hasPrefix("15") == true)
            #expect(await connection.parameterStatus("client_encoding") == "UTF8")
            #expect(await connection.parameterStatus("DateStyle") == "ISO, YMD")
            #expect(await connection.parameterStatus("TimeZone") == "UTC")
            let pid = try await connection.query("SELECT pg_backend_pid() AS pid")[0, "pid"]
            #expect(pid == .int32(await connection.backendPID))
        }
    }

    @Test func wrongPortFailsFastNamingHostAndPort() async throws {
        let port = try TestServer.unusedPort()
        let (outcome, elapsed) = await measure {
            await Result {
                try await PostgresConnection.connect("host=127.0.0.1 port=\(port) user=postgres connect_timeout=2")
            }
        }
        let error = try #require(outcome.failure(as: PostgresError.self))
        #expect(error.code == .connectionFailed)
        #expect(error.host == "127.0.0.1")
        #expect(error.port == "\(port)")
        #expect(error.description.contains("127.0.0.1"))
        #expect(error.description.contains("\(port)"))
        #expect(error.message.contains("Connection refused"))
        #expect(elapsed < .seconds(2))
    }

    /// A server that accepts TCP connections but never answers (a socket that listens and never reads):
    /// connect_timeout bounds the wait, as with psql.
    @Test func silentServerTimesOutWithinConnectTimeout() async throws {
        let (fd, port) = try TestServer.silentListener()
        defer { close(fd) }
        let (outcome, elapsed) = await measure {
            await Result {
                try await PostgresConnection.connect("host=127.0.0.1 port=\(port) user=postgres connect_timeout=2")
            }
        }
        let error = try #require(outcome.failure(as: PostgresError.self))
        #expect(error.code == .connectionFailed)
        #expect(error.message.contains("connect_timeout"))
        #expect(error.description.contains("127.0.0.1:\(port)"))
        #expect(elapsed >= .seconds(2))
        #expect(elapsed < .milliseconds(2600))
    }

    /// Without connect_timeout anywhere, the attempt is still bounded (libpq alone would wait for the kernel).
    @Test func silentServerWithoutConnectTimeoutUsesTheDefaultBound() async throws {
        let (fd, port) = try TestServer.silentListener()
        defer { close(fd) }
        let (outcome, elapsed) = await measure {
            await Result {
                try await PostgresConnection.connect(
                    "host=127.0.0.1 port=\(port) user=postgres", defaultConnectTimeout: .seconds(2))
            }
        }
        let error = try #require(outcome.failure(as: PostgresError.self))
        #expect(error.code == .connectionFailed)
        #expect(error.message.contains("connect_timeout"))
        #expect(elapsed >= .seconds(2))
        #expect(elapsed < .seconds(4))
    }

    @Test func connectingCanBeCancelled() async throws {
        let (fd, port) = try TestServer.silentListener()
        defer { close(fd) }
        let connecting = Task { try await PostgresConnection.connect("host=127.0.0.1 port=\(port) user=postgres") }
        try await Task.sleep(for: .milliseconds(200))
        let (outcome, elapsed) = await measure {
            connecting.cancel()
            return await connecting.result
        }
        #expect(outcome.failure(as: PostgresError.self)?.code == .cancelled)
        #expect(elapsed < .milliseconds(600))
    }

    @Test func invalidConninfoIsAConnectionError() async throws {
        let error = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect("host=/tmp no_such_keyword=1")
        }
        #expect(error?.code == .connectionFailed)
        #expect(error?.message.contains("no_such_keyword") == true)
    }

    @Test func passwordUserConnectsOverTCP() async throws {
        try await TestDatabase.with { database, _ in
            let port = try TestServer.setting("port")
            let connection = try await PostgresConnection.connect(
                "host=127.0.0.1 port=\(port) user=password_user password=secret-pw dbname=\(database.name)")
            #expect(try await connection.query("SELECT current_user AS u")[0, "u"] == .text("password_user"))
            #expect(await connection.host == "127.0.0.1")
            await connection.close()
        }
    }

    @Test func uriConninfoWorks() async throws {
        try await TestDatabase.with { database, _ in
            let port = try TestServer.setting("port")
            let connection = try await PostgresConnection.connect(
                "postgresql://password_user:secret-pw@127.0.0.1:\(port)/\(database.name)?application_name=uri")
            #expect(try await connection.query("SELECT current_database() AS d")[0, "d"] == .text(database.name))
            #expect(await connection.parameterStatus("application_name") == "uri")
            await connection.close()
        }
    }

    @Test func applicationNameDefaultsToGallraAndTheConninfoWins() async throws {
        try await TestDatabase.with { database, connection in
            #expect(try await connection.query("SHOW application_name")[0, "application_name"] == "gallra")
            let named = try await PostgresConnection.connect(database.conninfo + " application_name=shop-purge")
            #expect(try await named.query("SHOW application_name")[0, "application_name"] == "shop-purge")
            await named.close()
        }
    }

    @Test func clientEncodingIsForcedToUTF8() async throws {
        try await TestDatabase.with { database, _ in
            let connection = try await PostgresConnection.connect(database.conninfo + " client_encoding=LATIN1")
            #expect(await connection.parameterStatus("client_encoding") == "UTF8")
            #expect(try await connection.query("SELECT 'ø✓' AS s")[0, "s"] == .text("ø✓"))
            await connection.close()
        }
    }

    /// The server is the oracle for gallra's one identifier quoter: the name it makes is the name it was given.
    @Test func maliciousIdentifierIsQuoted() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE TABLE t (id int)")
            let name = #"x"; DROP TABLE t; --"#
            let quoted = SQLIdentifier.quoted(name)
            #expect(quoted == #""x""; DROP TABLE t; --""#)
            try await connection.execute("CREATE TABLE \(quoted) (id int)")
            let tables = try await connection.query(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1")
            #expect(tables.map { $0["relname"] } == [.text("t"), .text(name)])
            let qualified = SQLIdentifier.quoted(schema: "public", name: name)
            #expect(qualified == #""public"."x""; DROP TABLE t; --""#)
            #expect(try await connection.execute("INSERT INTO \(qualified) VALUES (1)") == 1)
        }
    }

    /// A `"` that a combining mark follows is one Character in Swift, yet one byte among others to the server.
    @Test(arguments: ["a\"\u{301}b", "\"\u{308}", "ok\"\u{200D}\u{1F600}\""])
    func quoteFollowedByACombiningMarkIsStillDoubled(name: String) async throws {
        try await TestDatabase.with { _, connection in
            let quoted = SQLIdentifier.quoted(name)
            try await connection.execute("CREATE TABLE \(quoted) (id int)")
            let tables = try await connection.query(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'")
            #expect(tables.map { $0["relname"] } == [.text(name)])
        }
    }

    @Test func noticesGoToTheLoggerNotStderr() async throws {
        let (logger, store) = RecordingLogHandler.logger()
        let marker = "gallra-notice-\(UUID().uuidString)"
        let stderrText = try await capturingStandardError {
            try await TestDatabase.with(logger: logger) { _, connection in
                _ = try await connection.execute(
                    "DO $$ BEGIN RAISE NOTICE '\(marker)' USING DETAIL = 'row value 12345'; "
                        + "RAISE WARNING 'careful \(marker)'; END $$")
            }
        }
        let entries = store.all.filter { $0.message.contains(marker) }
        #expect(entries.map(\.level) == [.notice, .warning])
        #expect(entries.first?.metadata["postgres.sqlstate"] == "00000")
        #expect(entries.allSatisfy { !$0.message.contains("12345") }, "DETAIL can carry row values")
        #expect(!stderrText.contains(marker))
    }

    @Test func terminatedBackendIsConnectionLost() async throws {
        try await TestDatabase.with { database, connection in
            let pid = await connection.backendPID
            let admin = try await database.connect()
            let terminated = try await admin.query("SELECT pg_terminate_backend($1, 5000) AS ok", [.int32(pid)])
            #expect(terminated[0, "ok"] == .bool(true))
            await admin.close()
            let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
            #expect(error?.isConnectionLost == true)
            #expect(error?.host != nil)
            #expect(await connection.isOpen == false)
            let again = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
            #expect(again?.code == .connectionClosed)
        }
    }
}

/// Runs `body` with file descriptor 2 redirected to a file; returns what was written there (and replays it).
private func capturingStandardError(_ body: () async throws -> Void) async throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("gallra-stderr-\(UUID().uuidString)")
    let file = open(path.path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
    #expect(file >= 0)
    let saved = dup(2)
    dup2(file, 2)
    var failure: (any Error)?
    do { try await body() } catch { failure = error }
    fflush(nil)
    dup2(saved, 2)
    close(saved)
    close(file)
    let text = (try? String(contentsOf: path, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(at: path)
    FileHandle.standardError.write(Data(text.utf8))
    if let failure { throw failure }
    return text
}
