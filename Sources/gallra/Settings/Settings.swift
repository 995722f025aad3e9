import Configuration
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres
import GallraSystemd
import Logging
import SystemPackage

/// gallra's settings, resolved with the precedence command line > `GALLRA_*` environment
/// variables > configuration file > defaults.
struct Settings: Sendable {
    /// The configuration file used by default when it exists.
    static let defaultConfigPath = "/etc/gallra/gallra.yaml"

    /// The file the settings came from, if any.
    var configPath: String?
    /// A libpq connection string or URI; nil means libpq's own defaults (PGHOST, PGSERVICE, ...).
    var database: String?
    /// The log format; nil chooses automatically (journal, terminal or `<N>`-prefixed text).
    var logFormat: LogFormat?
    /// The lowest level that is logged.
    var logLevel: Logger.Level
    /// The audit key file (`audit.key_file`); by default the systemd credential
    /// `$CREDENTIALS_DIRECTORY/audit-key` when systemd passes credentials, else none.
    var auditKeyFile: String?

    /// The database password from the systemd credential `db-password` (one trailing newline stripped; empty
    /// means none). A password in the `database` conninfo still wins. Never logged.
    var databasePassword: String?
    /// The `idle_in_transaction_session_timeout` of gallra's sessions (`session.idle_in_transaction_timeout`,
    /// seconds): a gallra stalled inside a transaction has its session ended and its locks freed after that long.
    /// 0 leaves the server's own setting.
    var idleInTransactionTimeout: Duration? = PostgresConnection.defaultIdleInTransactionTimeout
    /// The schedule of policies that name none (`schedule.default`).
    var defaultSchedule = "daily at 03:00"
    /// The longest wait between two attempts to reach the database (`daemon.retry_max`, seconds).
    var retryMax: Duration = .seconds(60)
    /// How often a standby tries to become the runner (`daemon.standby_retry`, seconds).
    var standbyRetry: Duration = .seconds(5)
    /// Live batches pause while a standby lags beyond these (`throttle.replica_lag`, `throttle.replica_lag_bytes`).
    var replicaLag = ReplicaLagLimits()
    /// The longest the service goes without looking for due erasure requests (`requests.sweep`, seconds).
    var requestSweep: Duration = .seconds(30)
    /// Where the erasure ledger is (`ledger.path`, else `$STATE_DIRECTORY/<database>/ledger`).
    var ledger = LedgerLocation(configured: nil, stateDirectory: nil)

    /// Whether a database is configured at all: a setting, or libpq's own environment.
    var hasDatabase: Bool {
        database != nil
            || ["PGHOST", "PGHOSTADDR", "PGDATABASE", "PGSERVICE", "PGPORT"].contains {
                ProcessInfo.processInfo.environment[$0] != nil
            }
    }

    /// Reads the settings for the global options of a command.
    static func load(
        _ options: GlobalOptions,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> Settings {
        let configPath = try resolveConfigPath(options.config, environment: environment)
        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "command line", values: options.configValues),
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: ["gallra"]),
        ]
        if let configPath {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(configPath)))
            } catch {
                throw SettingsError(
                    "cannot read the configuration file \(configPath): \(error)\n"
                        + "Fix the file (YAML, see config/gallra.yaml for every key) or name another with --config."
                )
            }
        }
        let reader = ConfigReader(providers: providers)

        var settings = Settings(
            configPath: configPath, database: nil, logFormat: nil, logLevel: .info, auditKeyFile: nil)
        settings.database = try await value("database", in: reader, configPath: configPath, isSecret: true)
        if let format = try await value("log.format", in: reader, configPath: configPath), format != "auto" {
            guard let parsed = LogFormat(rawValue: format) else {
                throw invalid("log.format", format, expected: "auto, journal, text or json", configPath: configPath)
            }
            settings.logFormat = parsed
        }
        if let level = try await value("log.level", in: reader, configPath: configPath) {
            guard let parsed = Logger.Level(rawValue: level) else {
                let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                throw invalid("log.level", level, expected: levels, configPath: configPath)
            }
            settings.logLevel = parsed
        }
        settings.auditKeyFile =
            try await value("audit.key_file", in: reader, configPath: configPath)
            ?? environment["CREDENTIALS_DIRECTORY"].flatMap { $0.isEmpty ? nil : $0 + "/audit-key" }
        if let schedule = try await value("schedule.default", in: reader, configPath: configPath) {
            do {
                _ = try Schedule(parsing: schedule)
            } catch {
                throw invalid("schedule.default", schedule, expected: "a schedule (\(error))", configPath: configPath)
            }
            settings.defaultSchedule = schedule
        }
        if let seconds = try await positiveSeconds("daemon.retry_max", in: reader, configPath: configPath) {
            settings.retryMax = seconds
        }
        if let seconds = try await positiveSeconds("daemon.standby_retry", in: reader, configPath: configPath) {
            settings.standbyRetry = seconds
        }
        if let text = try await numberOrString(
            "session.idle_in_transaction_timeout", in: reader, configPath: configPath)
        {
            // PostgreSQL takes at most 2^31-1 milliseconds.
            guard let seconds = Int(text), (0...2_147_483).contains(seconds) else {
                throw invalid(
                    "session.idle_in_transaction_timeout", text,
                    expected: "a whole number of seconds up to 2147483, or 0 to leave the server's setting",
                    configPath: configPath)
            }
            settings.idleInTransactionTimeout = seconds == 0 ? nil : .seconds(seconds)
        }
        if let seconds = try await positiveSeconds("requests.sweep", in: reader, configPath: configPath) {
            settings.requestSweep = seconds
        }
        settings.ledger = LedgerLocation(
            configured: try await value("ledger.path", in: reader, configPath: configPath),
            stateDirectory: environment["STATE_DIRECTORY"])
        settings.replicaLag = ReplicaLagLimits(
            replayLag: try await lagBound("throttle.replica_lag", in: reader, configPath: configPath),
            replayBytes: try await byteBound("throttle.replica_lag_bytes", in: reader, configPath: configPath))
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty,
            let data = FileManager.default.contents(atPath: directory + "/db-password")
        {
            var password = String(decoding: data, as: UTF8.self)
            if password.hasSuffix("\n") { password.removeLast() }
            settings.databasePassword = password.isEmpty ? nil : password
        }
        return settings
    }

    /// A whole number of seconds, written as a YAML number or a string.
    private static func positiveSeconds(_ key: String, in reader: ConfigReader, configPath: String?) async throws
        -> Duration?
    {
        let text: String?
        if let number = try? await reader.fetchInt(forKey: ConfigKey(key)) {
            text = String(number)
        } else {
            text = try await value(key, in: reader, configPath: configPath)
        }
        guard let text else { return nil }
        guard let seconds = Int(text), seconds > 0 else {
            throw invalid(key, text, expected: "a whole number of seconds, at least 1", configPath: configPath)
        }
        return .seconds(seconds)
    }

    /// A time bound: "10s", "500ms", "2min", a whole number of seconds, or 0 (no bound).
    private static func lagBound(_ key: String, in reader: ConfigReader, configPath: String?) async throws
        -> Duration?
    {
        guard let text = try await numberOrString(key, in: reader, configPath: configPath) else { return nil }
        if let seconds = Int64(text), seconds >= 0 { return .seconds(seconds) }
        do {
            return try PauseDuration.parse(text)
        } catch {
            throw invalid(
                key, text, expected: "a duration such as 10s, 500ms or 2min (at most 1 hour), or 0 for no bound",
                configPath: configPath)
        }
    }

    /// A size bound: "256MB", "64kB", "1GB" (units of 1024, as in PostgreSQL), a number of bytes, or 0 (no bound).
    private static func byteBound(_ key: String, in reader: ConfigReader, configPath: String?) async throws
        -> Int64?
    {
        guard let text = try await numberOrString(key, in: reader, configPath: configPath) else { return nil }
        do {
            return try ByteSize.parse(text)
        } catch {
            throw invalid(
                key, text, expected: "a size such as 256MB, 64kB or 1GB, or 0 for no bound (\(error))",
                configPath: configPath)
        }
    }

    /// A setting written as a YAML number or a string, as text.
    private static func numberOrString(_ key: String, in reader: ConfigReader, configPath: String?) async throws
        -> String?
    {
        if let number = try? await reader.fetchInt(forKey: ConfigKey(key)) { return String(number) }
        return try await value(key, in: reader, configPath: configPath)
    }

    /// `--config`, else `GALLRA_CONFIG`, else the default path when that file exists.
    private static func resolveConfigPath(_ option: String?, environment: [String: String]) throws -> String? {
        if let explicit = option ?? environment["GALLRA_CONFIG"] {
            guard access(explicit, R_OK) == 0 else {
                let reason = String(cString: strerror(errno))
                throw SettingsError(
                    "cannot read the configuration file \(explicit): \(reason).\n"
                        + "Give an existing file with --config (or GALLRA_CONFIG), or leave both out to use "
                        + "\(defaultConfigPath) when it exists."
                )
            }
            return explicit
        }
        return access(defaultConfigPath, F_OK) == 0 ? defaultConfigPath : nil
    }

    private static func value(
        _ key: String,
        in reader: ConfigReader,
        configPath: String?,
        isSecret: Bool = false
    ) async throws -> String? {
        do {
            let value = try await reader.fetchString(forKey: ConfigKey(key), isSecret: isSecret)
            return value?.isEmpty == true ? nil : value
        } catch {
            throw invalid(key, nil, expected: "a string", configPath: configPath)
        }
    }

    private static func invalid(_ key: String, _ value: String?, expected: String, configPath: String?)
        -> SettingsError
    {
        let variable = "GALLRA_" + key.uppercased().replacing(".", with: "_")
        let shown = value.map { " \"\($0)\"" } ?? ""
        let sources = ["the configuration file \(configPath ?? "")", variable].filter { !$0.hasSuffix(" ") }
        return SettingsError(
            "invalid value\(shown) for \(key): expected \(expected). Check \(sources.joined(separator: " and "))."
        )
    }
}

/// A setting gallra cannot use: which one, where it came from, and what it should be.
struct SettingsError: ExitStatusProviding {
    var message: String

    init(_ message: String) { self.message = message }

    var exitStatus: ExitStatus { .configuration }
    var description: String { message }
}
