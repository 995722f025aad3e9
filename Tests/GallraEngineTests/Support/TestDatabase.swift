import Foundation
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Logging
import Testing

/// A fresh database for one test, dropped afterwards even when the test fails.
extension TestDatabase {
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

/// The repository's root, from this file's place in it (Tests/GallraEngineTests/Support).
let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

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
