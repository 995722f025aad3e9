#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore
import GallraEngine
import GallraPostgres
import GallraSystemd
import Logging

/// What a command works with once its options are read: the settings and a logger.
struct CommandContext: Sendable {
    let settings: Settings
    let logger: Logger

    /// Reads the settings and sets up logging; call once per process.
    static func start(_ options: GlobalOptions) async throws -> CommandContext {
        let environment = ProcessInfo.processInfo.environment
        let settings = try await Settings.load(options, environment: environment)
        GallraLogging.bootstrap(
            format: settings.logFormat, level: settings.logLevel, environment: environment,
            identifier: settings.logIdentifier)
        var logger = Logger(label: "gallra")
        logger.logLevel = settings.logLevel
        return CommandContext(settings: settings, logger: logger)
    }

    /// The audit key for live runs: `audit.key_file`, or the systemd credential `audit-key`. Missing or
    /// unreadable is a configuration error, ``AuditKeyError`` (dry runs need no key).
    func auditKey() throws -> AuditKey {
        guard let path = settings.auditKeyFile else {
            throw CommandFailure(
                .configuration,
                "no audit key: live runs write the audit trail and need its key. Set audit.key_file in the "
                    + "configuration (or GALLRA_AUDIT_KEY_FILE), or pass the credential audit-key under systemd; "
                    + "make a key with: head -c 48 /dev/urandom | base64 > /etc/gallra/audit-key")
        }
        return try AuditKey.read(path: path)
    }

    /// Connects and checks that gallra's schema is the version this binary knows (exit 78 otherwise: run
    /// `gallra migrate`, or upgrade gallra). For every command but `migrate` and `check`.
    func connectToCurrentSchema() async throws -> PostgresConnection {
        let connection = try await connect()
        do {
            try await Schema.requireCurrent(on: connection)
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    /// Runs `body` on a connection to the current schema (``connectToCurrentSchema()``), closed afterwards whether
    /// `body` returns or throws.
    func withCurrentSchema<Result>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        let connection = try await connectToCurrentSchema()
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Connects to the configured database. An unreachable server is EX_UNAVAILABLE (69); a server that refuses the
    /// session says why: no such database or role EX_CONFIG (78), a wrong or missing password, a role it does not
    /// let in or one without CONNECT EX_NOPERM (77).
    func connect() async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(
                settings.database, password: settings.databasePassword,
                idleInTransactionTimeout: settings.idleInTransactionTimeout, logger: logger)
        } catch let error as PostgresError {
            let target = [error.host, error.port].compactMap { $0 }.joined(separator: ":")
            let failure = "cannot connect to the database\(target.isEmpty ? "" : " at \(target)"): \(error.message)\n"
            let setting = "the database setting (--database, GALLRA_DATABASE or `database` in the configuration file)"
            // The server answered and refused the session: what it said is the problem, not its availability.
            switch error.sqlState {
            case .invalidCatalogName?:
                throw CommandFailure(
                    .configuration,
                    failure + "The server runs but has no such database: correct \(setting), or create the "
                        + "database (createdb NAME).")
            case .invalidAuthorizationSpecification? where error.message.contains("\" does not exist"):
                throw CommandFailure(
                    .configuration,
                    failure + "The server runs but has no such role: correct the user in \(setting), or create the "
                        + "role (CREATE ROLE ... LOGIN).")
            case .invalidAuthorizationSpecification?:
                throw CommandFailure(
                    .noPermission,
                    failure + "The server runs but refuses this role from here: let it connect (pg_hba.conf), or "
                        + "correct the user in \(setting).")
            case .invalidPassword?:
                throw CommandFailure(
                    .noPermission,
                    failure + "The server runs but the password is wrong: correct it (the db-password credential, "
                        + "PGPASSWORD or ~/.pgpass).")
            case nil where error.message.contains("no password supplied"):
                // libpq's own words: the server asked for a password and none was configured.
                throw CommandFailure(
                    .noPermission,
                    failure + "The server runs and asks for a password: give it (the db-password credential, "
                        + "PGPASSWORD or ~/.pgpass).")
            case .insufficientPrivilege?:
                throw CommandFailure(
                    .noPermission,
                    failure + "The server runs but the role may not connect to this database: GRANT CONNECT ON "
                        + "DATABASE to it.")
            default:
                throw CommandFailure(
                    .unavailable,
                    failure + "Check that the server runs and \(setting) names it.")
            }
        }
    }
}
