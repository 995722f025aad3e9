import Configuration
import Foundation
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
                throw CommandFailure(
                    .configuration,
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
        return settings
    }

    /// `--config`, else `GALLRA_CONFIG`, else the default path when that file exists.
    private static func resolveConfigPath(_ option: String?, environment: [String: String]) throws -> String? {
        if let explicit = option ?? environment["GALLRA_CONFIG"] {
            guard access(explicit, R_OK) == 0 else {
                let reason = String(cString: strerror(errno))
                throw CommandFailure(
                    .configuration,
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
        -> CommandFailure
    {
        let variable = "GALLRA_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
        let shown = value.map { " \"\($0)\"" } ?? ""
        let sources = ["the configuration file \(configPath ?? "")", variable].filter { !$0.hasSuffix(" ") }
        return CommandFailure(
            .configuration,
            "invalid value\(shown) for \(key): expected \(expected). Check \(sources.joined(separator: " and "))."
        )
    }
}
