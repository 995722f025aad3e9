import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A log handler writing one line per event to standard error.
///
/// Each line is written with a single `write(2)`, so lines from concurrent tasks never interleave.
public struct StandardErrorLogHandler: RecordLogHandler {
    /// How a line looks.
    public enum Format: String, CaseIterable, Sendable {
        /// `<4>message key=value ...`: the sd-daemon(3) priority prefix, understood by systemd and
        /// other log collectors reading stderr. Line breaks in the message are escaped (`\n`).
        case prefixed
        /// `2026-11-29T03:12:00Z warning  message  key=value ...` for a person at a terminal.
        case terminal
        /// One JSON object per line: `{"ts":...,"level":...,"message":...,"policy":...}`.
        case json
    }

    /// The line format.
    public var format: Format
    /// The logger's label (written by the JSON format as `logger`).
    public var label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let fileDescriptor: Int32

    /// A handler for the logger `label`, writing `format` lines to standard error.
    public init(
        label: String,
        format: Format,
        logLevel: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.init(
            label: label, format: format, logLevel: logLevel, metadataProvider: metadataProvider, fileDescriptor: 2)
    }

    init(
        label: String,
        format: Format,
        logLevel: Logger.Level,
        metadataProvider: Logger.MetadataProvider?,
        fileDescriptor: Int32
    ) {
        self.label = label
        self.format = format
        self.logLevel = logLevel
        self.metadataProvider = metadataProvider
        self.fileDescriptor = fileDescriptor
    }

    func log(record: LogRecord) {
        Self.write(Self.render(record, format: format), to: fileDescriptor)
    }

    /// The full line for `record`, ending with a newline.
    static func render(_ record: LogRecord, format: Format) -> String {
        switch format {
        case .prefixed:
            var line = "<\(record.level.syslogPriority)>" + LogText.singleLine(record.message)
            if !record.metadata.isEmpty {
                line += " " + LogText.pairs(record.sortedMetadata)
            }
            return line + "\n"
        case .terminal:
            let level = record.level.rawValue
            var line = record.timestamp.iso8601(milliseconds: false) + " " + level
            line += String(repeating: " ", count: max(1, 9 - level.count))
            // A person reads this: keep the message's line breaks, escape other control characters.
            line += record.message.split(separator: "\n", omittingEmptySubsequences: false)
                .map { LogText.singleLine(String($0)) }.joined(separator: "\n")
            if !record.metadata.isEmpty {
                line += "  " + LogText.pairs(record.sortedMetadata)
            }
            return line + "\n"
        case .json:
            var line = "{\"ts\":\"\(record.timestamp.iso8601(milliseconds: true))\""
            line += ",\"level\":\"\(record.level.rawValue)\",\"message\":"
            LogText.appendJSONString(record.message, to: &line)
            if !record.label.isEmpty {
                line += ",\"logger\":"
                LogText.appendJSONString(record.label, to: &line)
            }
            for (key, value) in record.sortedMetadata {
                line += ","
                // Metadata sits beside the fixed keys; one with a fixed key's name is renamed, not duplicated.
                LogText.appendJSONString(jsonReservedKeys.contains(key) ? "metadata." + key : key, to: &line)
                line += ":"
                LogText.appendJSON(value, to: &line)
            }
            return line + "}\n"
        }
    }

    /// The keys the JSON format writes itself.
    static let jsonReservedKeys: Set<String> = ["ts", "level", "message", "logger"]

    /// Writes `line` with one `write(2)` (retrying only the rest of a partial write or after EINTR).
    static func write(_ line: String, to fileDescriptor: Int32) {
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return  // Nowhere left to report a failing stderr.
                }
            }
        }
    }
}
