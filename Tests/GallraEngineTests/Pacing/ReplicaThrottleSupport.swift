import Foundation
import GallraEngine
import GallraPostgres
import GallraTestSupport
import Logging
import Synchronization
import Testing

/// A lag source whose standby lags as the test says: `lagging` (replay this far behind) or caught up. Counts its
/// reads; plays `script` first when given, one reading per read.
final class FakeLagSource: ReplicaLagSource {
    private let state: Mutex<(lag: Duration?, bytes: Int64?, script: [ReplicaLagReading], reads: Int)>

    init(lag: Duration? = nil, bytes: Int64? = nil, script: [ReplicaLagReading] = []) {
        state = Mutex((lag, bytes, script, 0))
    }

    /// The standby's lag from now on.
    func set(lag: Duration?, bytes: Int64? = nil) { state.withLock { ($0.lag, $0.bytes) = (lag, bytes) } }

    var reads: Int { state.withLock { $0.reads } }

    func read() async throws -> ReplicaLagReading {
        state.withLock { state in
            state.reads += 1
            if !state.script.isEmpty { return state.script.removeFirst() }
            return ReplicaLagReading(standbys: [StandbyLag(name: "r1", replayLag: state.lag, replayBytes: state.bytes)])
        }
    }
}

/// Log entries kept for a test to read.
final class LogRecorder: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let entries = Mutex<[Entry]>([])

    var all: [Entry] { entries.withLock { $0 } }

    func messages(at level: Logger.Level) -> [String] { all.filter { $0.level == level }.map(\.message) }

    func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    /// A logger whose entries this recorder keeps.
    var logger: Logger {
        var logger = Logger(label: "gallra.test") { _ in RecordingLogHandler(recorder: self) }
        logger.logLevel = .info
        return logger
    }

    /// Waits until an entry's message contains `text`.
    func wait(for text: String, within seconds: Double = 10) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while !all.contains(where: { $0.message.contains(text) }) {
            guard ContinuousClock.now < deadline else {
                Issue.record("nothing logged containing \"\(text)\" within \(seconds) s: \(all.map(\.message))")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        recorder.append(
            LogRecorder.Entry(
                level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
    }
}
