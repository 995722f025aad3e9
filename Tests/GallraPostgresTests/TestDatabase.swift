import Foundation
import GallraPostgres
import Logging
import Synchronization
import Testing

/// A log handler that records what it receives, for tests that check what is logged.
struct RecordingLogHandler: LogHandler {
    struct Entry: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    final class Store: Sendable {
        let entries = Mutex<[Entry]>([])
        var all: [Entry] { entries.withLock { $0 } }
    }

    let store: Store
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let entry = Entry(
            level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" })
        store.entries.withLock { $0.append(entry) }
    }

    static func logger() -> (Logger, Store) {
        let store = Store()
        return (Logger(label: "gallra.test") { _ in RecordingLogHandler(store: store) }, store)
    }
}

/// Runs `body` and returns how long it took.
func measure<T>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
    let start = ContinuousClock.now
    let value = try await body()
    return (value, ContinuousClock.now - start)
}
