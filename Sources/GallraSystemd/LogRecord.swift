import Logging

#if canImport(Glibc)
    import Glibc
#endif

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

/// Renders metadata values and escapes text for the log formats.
enum LogText {
    /// A metadata value as a journal field value or a `key=value` value: strings as they are,
    /// arrays and dictionaries as compact JSON (dictionary keys sorted).
    static func plain(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array, .dictionary: json(value)
        }
    }

    /// A metadata value as JSON: strings as JSON strings, arrays and dictionaries nested.
    static func json(_ value: Logger.MetadataValue) -> String {
        var output = ""
        appendJSON(value, to: &output)
        return output
    }

    static func appendJSON(_ value: Logger.MetadataValue, to output: inout String) {
        switch value {
        case .string(let string):
            appendJSONString(string, to: &output)
        case .stringConvertible(let convertible):
            appendJSONString(convertible.description, to: &output)
        case .array(let values):
            output += "["
            for (index, element) in values.enumerated() {
                if index > 0 { output += "," }
                appendJSON(element, to: &output)
            }
            output += "]"
        case .dictionary(let dictionary):
            output += "{"
            for (index, entry) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { output += "," }
                appendJSONString(entry.key, to: &output)
                output += ":"
                appendJSON(entry.value, to: &output)
            }
            output += "}"
        }
    }

    /// `text` as a JSON string literal (RFC 8259): quotes, backslashes and all control characters escaped.
    static func appendJSONString(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case "\u{00}"..."\u{1F}": output += "\\u00" + hex(scalar.value)
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    static func jsonString(_ text: String) -> String {
        var output = ""
        appendJSONString(text, to: &output)
        return output
    }

    /// Text for a single-line format: line breaks become `\n` and `\r`, other control characters
    /// `\u{XX}`, so that one event is one line and cannot forge another line or a terminal escape.
    static func singleLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var output = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case _ where isControl(scalar): output += "\\u{" + hex(scalar.value) + "}"
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output
    }

    /// `key=value` pairs: a value with spaces, quotes, `=`, control characters (or an empty one) is
    /// written as a JSON string so that the pairs can be split again.
    static func pairs(_ metadata: [(key: String, value: Logger.MetadataValue)]) -> String {
        metadata.map { entry in
            let value = plain(entry.value)
            let needsQuotes =
                value.isEmpty
                || value.unicodeScalars.contains { $0 == " " || $0 == "\"" || $0 == "=" || isControl($0) }
            return singleLine(entry.key) + "=" + (needsQuotes ? jsonString(value) : value)
        }.joined(separator: " ")
    }

    /// C0 controls except tab, DEL, and C1 controls (some terminals act on U+009B as an escape).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 && scalar != "\t" || (0x7F...0x9F).contains(scalar.value)
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return digits.count < 2 ? "0" + digits : digits
    }
}
