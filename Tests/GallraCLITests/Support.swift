import Foundation
import Testing

/// The result of running the built `gallra` binary.
struct CommandResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double
}

/// Runs `executable` with `arguments`; the environment is the test's own minus gallra's and
/// libpq's variables, plus `environment`.
func run(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = [:],
    currentDirectory: String? = nil
) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment.filter { key, _ in
        !key.hasPrefix("GALLRA_") && !key.hasPrefix("PG") && key != "JOURNAL_STREAM" && key != "NOTIFY_SOCKET"
    }
    env.merge(environment) { _, new in new }
    process.environment = env
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let start = ContinuousClock.now
    try process.run()
    // Read both pipes to the end before waiting, so a chatty child cannot block on a full pipe.
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let elapsed = ContinuousClock.now - start
    return CommandResult(
        status: process.terminationStatus,
        stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self),
        seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    )
}

/// Runs the built `gallra` binary.
func gallra(_ arguments: String..., environment: [String: String] = [:]) throws -> CommandResult {
    try run(Harness.gallraPath, arguments, environment: environment)
}

/// Where the tests find the binary, the server and the source tree.
enum Harness {
    /// `gallra` is built next to the test bundle.
    static var gallraPath: String {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("gallra").path
    }

    /// The test server's conninfo, from `make test`.
    static func serverConninfo() throws -> String {
        guard let conninfo = ProcessInfo.processInfo.environment["GALLRA_TEST_DATABASE"], !conninfo.isEmpty else {
            Issue.record("GALLRA_TEST_DATABASE is not set: run the tests through `make test`, which starts a server")
            throw HarnessError.noServer
        }
        return conninfo
    }

    /// The test server's settings (host, port), parsed from its conninfo.
    static func serverSetting(_ key: String) throws -> String {
        let conninfo = try serverConninfo()
        for pair in conninfo.split(separator: " ") where pair.hasPrefix("\(key)=") {
            return String(pair.dropFirst(key.count + 1))
        }
        throw HarnessError.noServer
    }

    /// Runs SQL through psql as the test server's superuser: the oracle, independent of gallra.
    @discardableResult
    static func psql(_ sql: String, database: String = "postgres") throws -> String {
        let result = try run(
            "/usr/bin/psql",
            ["\(try serverConninfo()) dbname=\(database)", "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql]
        )
        guard result.status == 0 else {
            Issue.record("psql failed: \(result.stderr)")
            throw HarnessError.psqlFailed
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A fresh database for one test, dropped afterwards.
    static func withDatabase<T>(_ body: (_ name: String, _ conninfo: String) throws -> T) throws -> T {
        let name = "gallra_cli_\(UUID().uuidString.prefix(8).lowercased())"
        try psql("CREATE DATABASE \(name)")
        defer { _ = try? psql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        return try body(name, "\(try serverConninfo()) dbname=\(name)")
    }

    /// A scratch directory for one test, removed afterwards.
    static func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gallra-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }
}

enum HarnessError: Error {
    case noServer
    case psqlFailed
}
