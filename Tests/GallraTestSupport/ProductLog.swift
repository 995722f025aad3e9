import Foundation
import Logging
import Synchronization
import Testing

/// Where the product's own log lines go during the tests: the file `GALLRA_TEST_LOG` names (`make test` sets it,
/// and prints the lines of a failing test from it), each line marked with the test that logged it; standard error
/// without it. The engine's and the connection's default loggers use it, so that their lines never mix with the
/// test results on standard output.
public enum ProductLog {
    private static let installed: Void = {
        let path = ProcessInfo.processInfo.environment["GALLRA_TEST_LOG"]
        let handle = path.flatMap { path -> FileHandle? in
            if !FileManager.default.fileExists(atPath: path) {
                _ = FileManager.default.createFile(atPath: path, contents: nil)
            }
            guard let handle = FileHandle(forWritingAtPath: path) else { return nil }
            handle.seekToEndOfFile()
            return handle
        }
        let sink = LineSink(handle ?? FileHandle.standardError)
        LoggingSystem.bootstrap { label in TestLogHandler(label: label, sink: sink) }
    }()

    /// Installs the test log handler; once per process, before the first product logger is made.
    public static func install() { _ = installed }
}

/// Writes whole lines, one writer at a time.
final class LineSink: Sendable {
    private let handle: Mutex<FileHandle>

    init(_ handle: FileHandle) { self.handle = Mutex(handle) }

    func write(_ line: String) {
        handle.withLock { $0.write(Data((line + "\n").utf8)) }
    }
}

/// `[test()] label level: message key=value`.
struct TestLogHandler: LogHandler {
    let label: String
    let sink: LineSink
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let test = Test.current?.name ?? "-"
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let fields = all.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        sink.write("[\(test)] \(label) \(event.level): \(event.message)\(fields)")
    }
}
