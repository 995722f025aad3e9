import ArgumentParser
import Configuration
import GallraSystemd
import Logging

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The configuration file (YAML).",
            discussion: "Default: $GALLRA_CONFIG, else /etc/gallra/gallra.yaml when it exists.",
            valueName: "path"
        )
    )
    var config: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The database: a libpq connection string or URI, as for psql.",
            discussion: """
                Overrides `database` in the configuration file and $GALLRA_DATABASE. With none of them, \
                libpq's own defaults apply (PGHOST, PGPORT, PGUSER, PGSERVICE, ~/.pgpass, ...).
                """,
            valueName: "conninfo"
        )
    )
    var database: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Log format: journal, text or json (default: journal under systemd, text otherwise).",
            valueName: "format"
        )
    )
    var logFormat: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Lowest level logged: trace, debug, info, notice, warning, error or critical (default: info).",
            valueName: "level"
        )
    )
    var logLevel: String?

    /// The options given on the command line, as configuration keys that take precedence over
    /// the environment and the file.
    var configValues: [AbsoluteConfigKey: ConfigValue] {
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        if let database { values["database"] = ConfigValue(.string(database), isSecret: true) }
        if let logFormat { values["log.format"] = ConfigValue(.string(logFormat), isSecret: false) }
        if let logLevel { values["log.level"] = ConfigValue(.string(logLevel), isSecret: false) }
        return values
    }
}

extension GlobalOptions {
    func validate() throws {
        if let logFormat, logFormat != "auto", LogFormat(rawValue: logFormat) == nil {
            throw ValidationError("--log-format must be journal, text or json (or auto), not \"\(logFormat)\".")
        }
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("--log-level must be one of \(levels), not \"\(logLevel)\".")
        }
    }
}
