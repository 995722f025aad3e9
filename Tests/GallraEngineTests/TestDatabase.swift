import Foundation
import GallraPolicy
import GallraPostgres
import Logging
import Testing

// Test support, copied from GallraPostgresTests/TestDatabase.swift (test targets cannot share files).

/// The PostgreSQL server `make test` starts (`scripts/test.sh` exports its conninfo as GALLRA_TEST_DATABASE).
enum TestServer {
    struct NotConfigured: Error, CustomStringConvertible {
        var description: String { "GALLRA_TEST_DATABASE is not set: run the tests through `make test`" }
    }

    /// The server's conninfo; a missing server is a test failure, never a skip.
    static func conninfo() throws -> String {
        guard let value = ProcessInfo.processInfo.environment["GALLRA_TEST_DATABASE"], !value.isEmpty else {
            Issue.record("GALLRA_TEST_DATABASE is not set: run the tests through `make test` (scripts/test.sh)")
            throw NotConfigured()
        }
        return value
    }
}

/// A fresh database for one test, dropped afterwards even when the test fails.
struct TestDatabase: Sendable {
    let name: String
    /// The server's conninfo with ` dbname=<name>` appended (later keywords win in libpq conninfo strings).
    let conninfo: String

    static func with<T>(_ body: (TestDatabase, PostgresConnection) async throws -> T) async throws -> T {
        let base = try TestServer.conninfo()
        let name = "gallra_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let admin = try await PostgresConnection.connect(base)
        try await admin.execute("CREATE DATABASE \(name)")
        let database = TestDatabase(name: name, conninfo: base + " dbname=" + name)
        do {
            let connection = try await database.connect()
            let result: T
            do {
                result = try await body(database, connection)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            try await admin.execute("DROP DATABASE \(name) WITH (FORCE)")
            await admin.close()
            return result
        } catch {
            _ = try? await admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            await admin.close()
            throw error
        }
    }

    func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(
            conninfo, logger: Logger(label: "gallra.test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// Runs a SQL script (several statements) with psql, as an operator would load a schema file.
    func runScript(_ path: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", conninfo, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "psql -f \(path) failed: \(message)")
    }
}

/// The repository's root, from this file's place in it.
let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Runs each statement in order.
func execute(_ statements: [String], on connection: PostgresConnection) async throws {
    for statement in statements { try await connection.execute(statement) }
}

/// One value of a one-row query.
func scalar<T: PostgresDecodable>(
    _ sql: String, _ parameters: [PostgresValue] = [], as type: T.Type = T.self, on connection: PostgresConnection
) async throws -> T {
    let result = try await connection.query(sql, parameters)
    let row = try #require(result.first)
    return try row.decode(result.columns[0].name, as: type)
}

/// A valid policy document; `extra` lines are appended (e.g. a schedule).
func policyYAML(
    _ name: String, state: String = "active", inactiveFor: String = "1 year", extra: String = ""
) -> String {
    """
    policy: \(name)
    state: \(state)
    subject: { table: shop.customer, key: id }
    expires:
      inactive_for: \(inactiveFor)
      activity: last_seen_at
    data:
      - { table: shop.wishlist_item, delete: true }
      - { table: shop.customer, delete: true }
    \(extra)
    """
}

func policy(_ name: String, state: String = "active", inactiveFor: String = "1 year", extra: String = "") throws
    -> Policy
{
    try Policy(parsing: policyYAML(name, state: state, inactiveFor: inactiveFor, extra: extra))
}
