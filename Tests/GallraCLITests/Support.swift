import Foundation
import GallraTestSupport
import Testing

/// The result of running the built `gallra` binary.
struct CommandResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double
}

/// Runs `executable` with `arguments`; the environment is the test's own minus gallra's and
/// libpq's variables, plus `environment`. The waiting happens on a thread of its own, never on
/// one of the cooperative pool's few threads, which the other tests need.
func run(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = [:]
) async throws -> CommandResult {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            continuation.resume(
                with: Result { try runBlocking(executable, arguments, environment: environment) })
        }.start()
    }
}

private func runBlocking(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String]
) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment.filter { key, _ in
        !key.hasPrefix("GALLRA_") && !key.hasPrefix("PG") && key != "JOURNAL_STREAM" && key != "NOTIFY_SOCKET"
    }
    env.merge(environment) { _, new in new }
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let start = ContinuousClock.now
    try process.run()
    // Read both pipes to the end before waiting, so a chatty child cannot block on a full pipe.
    // stderr is read on another thread, so that neither pipe can fill up and block the child.
    let stderrReader = StderrReader(err.fileHandleForReading)
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = stderrReader.wait()
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
func gallra(_ arguments: String..., environment: [String: String] = [:]) async throws -> CommandResult {
    try await run(Harness.gallraPath, arguments, environment: environment)
}

/// Reads a pipe to its end on a thread of its own.
private final class StderrReader: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var data = Data()

    init(_ handle: FileHandle) {
        Thread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }.start()
    }

    func wait() -> Data {
        done.wait()
        return data
    }
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
        ProductLog.install()
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
    static func psql(_ sql: String, database: String = "postgres") async throws -> String {
        let result = try await run(
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
    static func withDatabase<T>(_ body: (_ name: String, _ conninfo: String) async throws -> T) async throws -> T {
        let name = "gallra_cli_\(UUID().uuidString.prefix(8).lowercased())"
        try await psql("CREATE DATABASE \(name)")
        do {
            let result = try await body(name, "\(try serverConninfo()) dbname=\(name)")
            try await psql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            return result
        } catch {
            _ = try? await psql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            throw error
        }
    }

    /// A scratch directory for one test, removed afterwards.
    static func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gallra-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path)
    }
}

enum HarnessError: Error {
    case noServer
    case psqlFailed
    case timeout
}
