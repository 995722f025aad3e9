import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// What gallra's log handlers share: the handler's metadata and how an event becomes a ``LogRecord``. A handler
/// keeps the state swift-log asks for and says only where a record goes, so that a field or a merging rule is
/// written once, here and in ``LogRecord``.
protocol RecordLogHandler: LogHandler {
    /// The logger's label.
    var label: String { get }

    /// Writes one record: a journal entry, or a line on standard error.
    func log(record: LogRecord)
}

extension RecordLogHandler {
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        log(record: LogRecord(event: event, label: label, handlerMetadata: metadata, provider: metadataProvider))
    }
}

/// One log event with its metadata merged, ready to be rendered by a handler.
struct LogRecord: Sendable {
    var timestamp: LogTimestamp
    var level: Logger.Level
    var message: String
    var label: String
    var metadata: Logger.Metadata
    var file: String
    var function: String
    var line: UInt

    /// Merges metadata the way swift-log's own handlers do: the handler's metadata, then the
    /// metadata provider's, then the call's (each overriding the one before), then the error.
    init(
        event: LogEvent,
        label: String,
        handlerMetadata: Logger.Metadata,
        provider: Logger.MetadataProvider?,
        timestamp: LogTimestamp = .now()
    ) {
        var metadata = handlerMetadata
        if let provided = provider?.get(), !provided.isEmpty {
            metadata.merge(provided) { _, provided in provided }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            metadata.merge(explicit) { _, explicit in explicit }
        }
        if let error = event.error {
            metadata["error.message"] = "\(error)"
            metadata["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        self.init(
            timestamp: timestamp, level: event.level, message: event.message.description, label: label,
            metadata: metadata, file: event.file, function: event.function, line: event.line)
    }

    init(
        timestamp: LogTimestamp, level: Logger.Level, message: String, label: String = "",
        metadata: Logger.Metadata = [:], file: String = "", function: String = "", line: UInt = 0
    ) {
        self.timestamp = timestamp
        self.level = level
        self.message = message
        self.label = label
        self.metadata = metadata
        self.file = file
        self.function = function
        self.line = line
    }

    /// Metadata in a stable order, so that lines are reproducible and easy to compare.
    var sortedMetadata: [(key: String, value: Logger.MetadataValue)] {
        metadata.sorted { $0.key < $1.key }
    }
}

extension Logger.Level {
    /// The syslog priority (`PRIORITY=` in the journal, `<N>` on stderr) for this level.
    /// swift-log has no syslog `alert` or `emerg`; `trace` and `debug` both map to `debug` (7).
    var syslogPriority: Int {
        switch self {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}

/// Wall-clock time of a log event, in UTC.
struct LogTimestamp: Sendable, Equatable {
    var seconds: Int
    var nanoseconds: Int

    static func now() -> LogTimestamp {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return LogTimestamp(seconds: Int(now.tv_sec), nanoseconds: Int(now.tv_nsec))
    }

    /// RFC 3339 in UTC, e.g. `2026-11-29T03:12:00Z`, or `2026-11-29T03:12:00.123Z` with milliseconds.
    func iso8601(milliseconds: Bool) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var text =
            "\(parts.tm_year + 1900)-\(Self.pad(parts.tm_mon + 1))-\(Self.pad(parts.tm_mday))"
            + "T\(Self.pad(parts.tm_hour)):\(Self.pad(parts.tm_min)):\(Self.pad(parts.tm_sec))"
        if milliseconds {
            let millis = nanoseconds / 1_000_000
            text += "." + String(repeating: "0", count: millis < 10 ? 2 : millis < 100 ? 1 : 0) + "\(millis)"
        }
        return text + "Z"
    }

    private static func pad(_ value: Int32) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}
