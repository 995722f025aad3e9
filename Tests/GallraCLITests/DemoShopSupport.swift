import Foundation
import GallraEngine
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A demo shop filled with data, migrated, with the shipped policies applied and an audit key: what an operator
/// has before the first `gallra run`.
struct DemoShop: Sendable {
    /// The instant the demo data is generated relative to; the runs evaluate expiry at it (`--as-of`).
    static let asOf = "2026-11-29T00:00:00Z"
    /// The same instant for SQL.
    static let asOfSQL = "timestamptz '2026-11-29 00:00:00+00'"

    var database: String
    var conninfo: String
    var directory: String
    var keyFile: String
    /// The key's bytes as gallra reads them: the file without its trailing newline.
    var keyBytes: [UInt8]
    var root: String

    /// The environment that gives a live run its audit key.
    var keyEnvironment: [String: String] { ["GALLRA_AUDIT_KEY_FILE": keyFile] }

    /// The source tree, for the shipped policies and the demo schema.
    static func sourceRoot() throws -> String {
        guard let root = ProcessInfo.processInfo.environment["GALLRA_SOURCE_ROOT"] else {
            Issue.record("GALLRA_SOURCE_ROOT is not set: run the tests through `make test`")
            throw HarnessError.noServer
        }
        return root
    }

    /// A fresh database holding the demo shop with `customers` customers, generated as of `asOf`; migrated
    /// unless `migrate` is false; the shipped policies applied unless `policies` is false; then, as `make demo`
    /// does, the shop's consent table moved into gallra's registry (`config/demo/consent.sql`) unless `consents`
    /// is false.
    static func with(
        customers: Int, migrate: Bool = true, policies: Bool = true, consents: Bool = true,
        _ body: (DemoShop) async throws -> Void
    ) async throws {
        let root = try sourceRoot()
        try await Harness.withDatabase { database, conninfo in
            try await Harness.withTemporaryDirectory { directory in
                for (script, variables) in [
                    ("schema.sql", [String]()),
                    ("generate.sql", ["-v", "customers=\(customers)", "-v", "as_of=2026-11-29 00:00:00+00"]),
                ] {
                    let load = try await run(
                        "/usr/bin/psql",
                        [conninfo, "-qX", "-v", "ON_ERROR_STOP=1"] + variables + [
                            "-f", "\(root)/config/demo/\(script)",
                        ])
                    try #require(load.status == 0, "loading \(script): \(load.stderr)")
                }
                let keyText = "dGhlLWF1ZGl0LWtleS1vZi10aGUtcnVuLWNvbW1hbmQtdGVzdHMtMDEyMzQ1Njc4OQ=="
                let keyFile = directory + "/audit-key"
                try (keyText + "\n").write(toFile: keyFile, atomically: true, encoding: .utf8)
                let shop = DemoShop(
                    database: database, conninfo: conninfo, directory: directory, keyFile: keyFile,
                    keyBytes: Array(keyText.utf8), root: root)
                if migrate {
                    let result = try await run(Harness.gallraPath, ["migrate", "--database", conninfo])
                    try #require(result.status == 0, "gallra migrate: \(result.stderr)")
                }
                if policies {
                    try await shop.apply("\(root)/config/policies")
                }
                if migrate && policies && consents {
                    let load = try await run(
                        "/usr/bin/psql",
                        [conninfo, "-qX", "-v", "ON_ERROR_STOP=1", "-f", "\(root)/config/demo/consent.sql"])
                    try #require(load.status == 0, "loading consent.sql: \(load.stderr)")
                }
                try await body(shop)
            }
        }
    }

    /// `gallra policy apply PATH`.
    func apply(_ path: String) async throws {
        let result = try await gallra("policy", "apply", "--database", conninfo, path)
        try #require(result.status == 0, "gallra policy apply \(path): \(result.stdout) \(result.stderr)")
    }

    /// Applies a copy of the shipped policy `name` with `replacements` made in its text.
    func applyEdited(_ name: String, _ replacements: [(String, String)]) async throws {
        var text = try String(contentsOfFile: "\(root)/config/policies/\(name).yaml", encoding: .utf8)
        for (old, new) in replacements {
            try #require(text.contains(old), "\(name).yaml has no \(old)")
            text = text.replacingOccurrences(of: old, with: new)
        }
        let file = "\(directory)/\(name)-\(UUID().uuidString.prefix(8)).yaml"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        try await apply(file)
    }

    /// psql on the shop's database.
    @discardableResult
    func psql(_ sql: String) async throws -> String {
        try await Harness.psql(sql, database: database)
    }

    /// `gallra ARGUMENTS --database CONNINFO`.
    func gallra(_ arguments: String..., environment: [String: String] = [:]) async throws -> CommandResult {
        try await run(Harness.gallraPath, arguments + ["--database", conninfo], environment: environment)
    }

    /// md5 of every table of the shop and of gallra, one line per table: what "nothing changed" compares.
    func checksums() async throws -> String {
        let tables = try await psql(
            """
            SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
            WHERE schemaname IN ('shop', 'gallra') ORDER BY 1
            """
        ).split(separator: "\n")
        try #require(tables.count > 12, "the shop's and gallra's tables: \(tables)")
        return try await psql(
            tables.map {
                "SELECT '\($0)', md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) FROM \($0) AS r"
            }.joined(separator: " UNION ALL "))
    }

    /// The HMAC-SHA-256 subject digest of customer `id`, computed here from the key file.
    func digest(customer id: Int) -> String {
        Digest.hex(Digest.hmacSHA256(key: keyBytes, message: Array("shop.customer:\(id)".utf8)))
    }
}

/// Parses a command's stdout as a JSON object.
func jsonObject(_ result: CommandResult) throws -> [String: Any] {
    try #require(
        try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
        "not a JSON object: \(result.stdout) \(result.stderr)")
}

/// A process started in the background: killed, or waited for, by the test.
final class BackgroundProcess: @unchecked Sendable {
    let process = Process()

    /// Starts `executable`; its output goes to `output` (a file), so that no pipe can fill up.
    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], output: String) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment.filter { key, _ in
            !key.hasPrefix("GALLRA_") && !key.hasPrefix("PG") && key != "JOURNAL_STREAM" && key != "NOTIFY_SOCKET"
        }
        env.merge(environment) { _, new in new }
        process.environment = env
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try handle.close()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Sends `signal` (SIGKILL by default).
    func kill(_ signal: Int32 = SIGKILL) {
        _ = Glibc.kill(process.processIdentifier, signal)
    }

    /// Waits for the exit on a thread of its own; the status, and whether a signal ended the process.
    func wait() async -> (status: Int32, signalled: Bool) {
        await withCheckedContinuation { continuation in
            Thread { [process] in
                process.waitUntilExit()
                continuation.resume(
                    returning: (process.terminationStatus, process.terminationReason == .uncaughtSignal))
            }.start()
        }
    }
}
