import GallraTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Records every sd_notify datagram sent to a fresh `NOTIFY_SOCKET`, on a thread of its own.
final class NotifyRecorder: Sendable {
    struct Message: Sendable {
        var assignments: [String]
        var senderPID: pid_t?
        var at: ContinuousClock.Instant
    }

    let address: String
    private let messages = Mutex<[Message]>([])
    private let stopped = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    init() throws {
        let listener = try NotifyListener(abstract: false, receiveTimeout: .milliseconds(250))
        address = listener.address
        Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                guard let datagram = try? listener.receive() else { continue }
                let message = Message(
                    assignments: datagram.assignments, senderPID: datagram.senderPID, at: .now)
                messages.withLock { $0.append(message) }
            }
            finished.store(true, ordering: .relaxed)
        }.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    var all: [Message] { messages.withLock { $0 } }

    /// Messages holding `assignment` (exactly, or with a `NAME=` prefix when it ends in `=`).
    func count(_ assignment: String) -> Int {
        all.filter { $0.assignments.contains { Self.matches($0, assignment) } }.count
    }

    static func matches(_ text: String, _ assignment: String) -> Bool {
        assignment.hasSuffix("=") ? text.hasPrefix(assignment) : text == assignment
    }

    /// Waits until a message after index `from` satisfies `predicate`; returns its index.
    @discardableResult
    func wait(
        for what: String, after from: Int = 0, within seconds: Double = 30,
        _ predicate: @escaping @Sendable ([String]) -> Bool
    ) async throws -> Int {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            let found = messages.withLock { messages in
                messages.indices.first { $0 >= from && predicate(messages[$0].assignments) }
            }
            if let found { return found }
            try await Task.sleep(for: .milliseconds(50))
        }
        let seen = all.map { $0.assignments.joined(separator: " ") }.suffix(15).joined(separator: "\n  ")
        Issue.record("no sd_notify message \(what) within \(seconds) s; last seen:\n  \(seen)")
        throw HarnessError.timeout
    }

    /// Waits for a message holding `assignment`.
    @discardableResult
    func wait(for assignment: String, after from: Int = 0, within seconds: Double = 30) async throws -> Int {
        try await wait(for: assignment, after: from, within: seconds) { $0.contains { Self.matches($0, assignment) } }
    }

    /// Waits for a `STATUS=` containing `text`.
    @discardableResult
    func waitForStatus(containing text: String, after from: Int = 0, within seconds: Double = 30) async throws
        -> Int
    {
        try await wait(for: "STATUS=...\(text)...", after: from, within: seconds) {
            $0.contains { $0.hasPrefix("STATUS=") && $0.contains(text) }
        }
    }
}

/// The built `gallra run` service in the background, its output in a file.
final class DaemonProcess: @unchecked Sendable {
    let process = Process()
    let logPath: String
    let notify: NotifyRecorder

    init(database: String, keyFile: String, environment: [String: String] = [:], arguments: [String] = []) throws {
        notify = try NotifyRecorder()
        logPath = NSTemporaryDirectory() + "gallra-daemon-\(UUID().uuidString.prefix(8)).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Harness.gallraPath)
        process.arguments = ["run", "--database", database, "--log-level", "debug"] + arguments
        var env = ProcessInfo.processInfo.environment.filter { key, _ in
            !key.hasPrefix("GALLRA_") && !key.hasPrefix("PG") && key != "JOURNAL_STREAM"
                && !key.hasPrefix("WATCHDOG_")
        }
        env["NOTIFY_SOCKET"] = notify.address
        env["GALLRA_AUDIT_KEY_FILE"] = keyFile
        env.merge(environment) { _, new in new }
        process.environment = env
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        notify.stop()
        try? FileManager.default.removeItem(atPath: logPath)
    }

    var pid: pid_t { process.processIdentifier }

    func signal(_ number: Int32) { kill(pid, number) }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits for the process to exit; its status, or nil after `seconds`.
    func waitForExit(within seconds: Double) async throws -> Int32? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while process.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }
}

/// A database with `count` customers unseen for two years, the policy `stale-customers` (delete them in batches
/// of `batchSize`, pausing `pause` between batches) applied, an audit key, and a conninfo.
func withExpiredCustomers(
    count: Int, batchSize: Int = 5, pause: String = "0ms", state: String = "active",
    conninfo server: String? = nil,
    _ body: (_ database: String, _ conninfo: String, _ keyFile: String) async throws -> Void
) async throws {
    try await Harness.withDatabase { database, conninfo in
        try await Harness.withTemporaryDirectory { directory in
            let keyFile = directory + "/audit-key"
            try "c2VjcmV0LWF1ZGl0LWtleS1mb3ItdGhlLWRhZW1vbi10ZXN0cy0xMjM0NTY3OA==\n".write(
                toFile: keyFile, atomically: true, encoding: .utf8)
            try await Harness.psql(
                """
                CREATE SCHEMA shop;
                CREATE TABLE shop.customer (id integer PRIMARY KEY, last_seen_at timestamptz NOT NULL);
                INSERT INTO shop.customer SELECT g, now() - interval '2 years' FROM generate_series(1, \(count)) g;
                INSERT INTO shop.customer SELECT g, now() FROM generate_series(100001, 100010) g;
                """, database: database)
            let policy = directory + "/stale-customers.yaml"
            try """
            policy: stale-customers
            state: \(state)
            subject: { table: shop.customer, key: id }
            expires: { inactive_for: 1 year, activity: last_seen_at }
            schedule: daily at 03:00
            data:
              - { table: shop.customer, delete: true }
            limits: { batch_size: \(batchSize), max_subjects_per_run: 100000, max_fraction: 1, pause: \(pause) }
            """.write(toFile: policy, atomically: true, encoding: .utf8)
            let migrate = try await gallra("migrate", "--database", conninfo)
            try #require(migrate.status == 0, "\(migrate.stderr)")
            let apply = try await gallra("policy", "apply", "--database", conninfo, policy)
            try #require(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
            try await body(database, conninfo, keyFile)
        }
    }
}
