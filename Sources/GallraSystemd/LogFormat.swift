import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The log format chosen on the command line (`--log-format journal|text|json`).
public enum LogFormat: String, CaseIterable, Sendable {
    /// The journal's native protocol, with structured fields.
    case journal
    /// Text lines on stderr: for a person on a terminal, `<N>`-prefixed for a log collector otherwise.
    case text
    /// JSON lines on stderr.
    case json
}

/// Where log events go and how they look, resolved from a ``LogFormat`` and the process's stderr.
public enum LogDestination: Hashable, Sendable {
    /// The journal's native protocol.
    case journal
    /// Lines on standard error.
    case standardError(StandardErrorLogHandler.Format)

    /// The destination for `format` (nil: chosen automatically) given what stderr is connected to:
    /// without a format, the journal when stderr is the journal stream, else text; text is the
    /// terminal format on a terminal and `<N>`-prefixed lines otherwise.
    public static func resolve(
        format: LogFormat?,
        standardErrorIsJournal: Bool,
        standardErrorIsTerminal: Bool
    ) -> LogDestination {
        switch format ?? (standardErrorIsJournal ? .journal : .text) {
        case .journal: .journal
        case .json: .standardError(.json)
        case .text: .standardError(standardErrorIsTerminal ? .terminal : .prefixed)
        }
    }

    /// The destination for `format` in this process, checking `JOURNAL_STREAM` (from `environment`)
    /// and whether file descriptor 2 is a terminal.
    public static func current(format: LogFormat?, environment: [String: String]) -> LogDestination {
        resolve(
            format: format,
            standardErrorIsJournal: JournalStream.matchesStandardError(environment: environment),
            standardErrorIsTerminal: isatty(2) == 1
        )
    }
}

/// Sets up swift-log for gallra once, at start-up.
public enum GallraLogging {
    /// The handler for the logger `label` writing to `destination`.
    public static func makeHandler(
        label: String,
        destination: LogDestination,
        level: Logger.Level,
        identifier: String = "gallra",
        metadataProvider: Logger.MetadataProvider? = nil
    ) -> any LogHandler {
        switch destination {
        case .journal:
            JournalLogHandler(
                label: label, identifier: identifier, logLevel: level, metadataProvider: metadataProvider)
        case .standardError(let format):
            StandardErrorLogHandler(label: label, format: format, logLevel: level, metadataProvider: metadataProvider)
        }
    }

    /// A factory for `LoggingSystem.bootstrap(_:metadataProvider:)`; the destination is resolved
    /// once, here, with ``LogDestination/current(format:environment:)``.
    public static func makeFactory(
        format: LogFormat?,
        level: Logger.Level,
        environment: [String: String],
        identifier: String = "gallra"
    ) -> @Sendable (String, Logger.MetadataProvider?) -> any LogHandler {
        let destination = LogDestination.current(format: format, environment: environment)
        return { label, metadataProvider in
            makeHandler(
                label: label, destination: destination, level: level, identifier: identifier,
                metadataProvider: metadataProvider)
        }
    }

    /// Bootstraps swift-log with gallra's handlers. Call once per process, before creating loggers.
    public static func bootstrap(
        format: LogFormat?,
        level: Logger.Level,
        environment: [String: String],
        identifier: String = "gallra",
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        LoggingSystem.bootstrap(
            makeFactory(format: format, level: level, environment: environment, identifier: identifier),
            metadataProvider: metadataProvider)
    }
}
