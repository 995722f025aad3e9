import CSystemd
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A log handler sending each event to systemd-journald over its native protocol (`sd_journal_sendv`).
///
/// An entry has `MESSAGE` (line breaks kept), `PRIORITY`, `SYSLOG_IDENTIFIER`, `CODE_FILE`,
/// `CODE_LINE`, `CODE_FUNC`, and one field per metadata key named by
/// ``JournalFieldName/forMetadataKey(_:prefix:)``: `run.id` becomes `GALLRA_RUN_ID`, while a key
/// already in journal form such as `MESSAGE_ID` is passed through.
public struct JournalLogHandler: RecordLogHandler {
    /// `SYSLOG_IDENTIFIER=` of every entry (what `journalctl -t` filters on).
    public var identifier: String
    /// The logger's label.
    public var label: String
    /// Put before metadata keys that are not already journal field names.
    public var fieldPrefix: String
    /// Where an entry goes when journald cannot be reached (no socket, say), so it is not lost;
    /// nil drops it.
    public var fallback: StandardErrorLogHandler.Format?
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// Sends an entry (replaced in tests to simulate an unreachable journald).
    var sender: @Sendable ([(name: String, value: String)]) -> Int32 = JournalLogHandler.send
    /// Where ``fallback`` lines go.
    var fallbackFileDescriptor: Int32 = 2

    /// A handler for the logger `label`.
    public init(
        label: String,
        identifier: String = "gallra",
        fieldPrefix: String = JournalFieldName.defaultPrefix,
        logLevel: Logger.Level = .info,
        fallback: StandardErrorLogHandler.Format? = .prefixed,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.identifier = identifier
        self.fieldPrefix = fieldPrefix
        self.logLevel = logLevel
        self.fallback = fallback
        self.metadataProvider = metadataProvider
    }

    func log(record: LogRecord) {
        if sender(fields(for: record)) < 0, let fallback {
            StandardErrorLogHandler.write(
                StandardErrorLogHandler.render(record, format: fallback), to: fallbackFileDescriptor)
        }
    }

    /// The entry's fields as `(name, value)`, in the order they are sent.
    func fields(for record: LogRecord) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = [
            ("MESSAGE", record.message),
            ("PRIORITY", String(record.level.syslogPriority)),
            ("SYSLOG_IDENTIFIER", identifier),
            ("CODE_FILE", record.file),
            ("CODE_LINE", String(record.line)),
            ("CODE_FUNC", record.function),
        ]
        for (key, value) in record.sortedMetadata {
            fields.append((JournalFieldName.forMetadataKey(key, prefix: fieldPrefix), LogText.plain(value)))
        }
        return fields
    }

    /// Sends `NAME=value` byte strings as one entry; returns `sd_journal_sendv`'s result (negative errno on failure).
    static func send(_ fields: [(name: String, value: String)]) -> Int32 {
        var buffer: [UInt8] = []
        var ranges: [Range<Int>] = []
        buffer.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 1 })
        for (name, value) in fields {
            let start = buffer.count
            buffer.append(contentsOf: name.utf8)
            buffer.append(UInt8(ascii: "="))
            buffer.append(contentsOf: value.utf8)
            ranges.append(start..<buffer.count)
        }
        return buffer.withUnsafeMutableBytes { bytes in
            let vectors = ranges.map { iovec(iov_base: bytes.baseAddress! + $0.lowerBound, iov_len: $0.count) }
            return vectors.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
        }
    }
}
