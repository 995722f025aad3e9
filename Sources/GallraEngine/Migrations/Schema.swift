// gallra's own schema in the target database (schema `gallra`), created and upgraded by migrations.
//
// Each migration runs in its own transaction together with its row in `gallra.schema_version`, under the
// transaction-level advisory lock `Schema.migrationLockKey`: two gallra processes migrating the same database at
// once serialize on the lock, and the second finds the work done. A database whose schema is newer than this
// binary knows is refused, never downgraded or written to.
import GallraPostgres
import Logging

/// One versioned step of gallra's schema. Statements run in order, in one transaction.
public struct Migration: Sendable, Hashable {
    /// 1, 2, 3, ...: the order of application and the value recorded in `gallra.schema_version`.
    public let version: Int
    /// One line, recorded with the version.
    public let description: String
    /// The SQL statements, one per element (the extended protocol takes one statement at a time).
    public let statements: [String]

    public init(version: Int, description: String, statements: [String]) {
        self.version = version
        self.description = description
        self.statements = statements
    }
}

/// Where a database's gallra schema stands relative to this binary.
public struct SchemaStatus: Sendable, Hashable {
    /// The highest version recorded in the database; 0 when gallra's schema is not there yet.
    public var currentVersion: Int
    /// The highest version this binary knows.
    public var latestVersion: Int

    /// Migrations this binary would apply.
    public var pending: [Migration] { Schema.migrations.filter { $0.version > currentVersion } }
    /// Whether `Schema.migrate` has something to do.
    public var needsMigration: Bool { currentVersion < latestVersion }
    /// The database was migrated by a newer gallra: this one must not use it.
    public var isNewerThanBinary: Bool { currentVersion > latestVersion }
}

/// Why gallra cannot use (or upgrade) its schema in a database.
public struct SchemaError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CustomStringConvertible {
        /// The database holds a schema version this binary does not know. The CLI exits 78 (EX_CONFIG): the
        /// installation is inconsistent, retrying cannot help, and systemd's `RestartPreventExitStatus=78` stops
        /// a restart loop. (69, EX_UNAVAILABLE, stays reserved for a database that cannot be reached.)
        case newerThanBinary
        /// The schema is older than this binary and the caller did not migrate (`gallra migrate` fixes it). The CLI
        /// exits 78 too.
        case migrationNeeded

        public var description: String { rawValue }
    }

    public var code: Code
    /// The version found in the database.
    public var databaseVersion: Int
    /// The highest version this binary knows.
    public var knownVersion: Int

    public var description: String {
        switch code {
        case .newerThanBinary:
            "the gallra schema in this database is version \(databaseVersion), this gallra knows up to "
                + "\(knownVersion); upgrade gallra"
        case .migrationNeeded:
            "the gallra schema in this database is version \(databaseVersion), this gallra needs "
                + "\(knownVersion); run gallra migrate"
        }
    }
}

/// gallra's schema: its migrations, and applying them.
public enum Schema {
    /// The schema gallra's tables live in. The catalog reader leaves it out.
    public static let name = "gallra"

    /// The `pg_advisory_xact_lock(bigint)` key migrations hold: the ASCII bytes of "gallra" followed by 0x0001.
    /// Other gallra locks use the same prefix with another suffix (the live runner: 0x0002).
    public static let migrationLockKey: Int64 = 0x6761_6C6C_7261_0001

    /// Every migration this binary knows, in version order. Append new ones; never edit an applied one.
    public static let migrations: [Migration] = [
        migration1, migration2, migration3, migration4, migration5, migration6, migration7, migration8, migration9,
        migration10, migration11, migration12, migration13, migration14, migration15,
    ]

    /// The version a fully migrated database has.
    public static var latestVersion: Int { migrations.last?.version ?? 0 }

    /// The highest version recorded in the database, 0 when gallra's schema is not there. Takes no lock.
    public static func currentVersion(on connection: PostgresConnection) async throws -> Int {
        let exists = try await connection.query(
            "SELECT to_regclass('gallra.schema_version') IS NOT NULL AS present")
        guard try exists.first?.decode("present", as: Bool.self) == true else { return 0 }
        let result = try await connection.query("SELECT max(version) AS version FROM gallra.schema_version")
        return try result.first?.decode("version", as: Int?.self) ?? 0
    }

    /// Where the database's schema stands.
    public static func status(on connection: PostgresConnection) async throws -> SchemaStatus {
        SchemaStatus(currentVersion: try await currentVersion(on: connection), latestVersion: latestVersion)
    }

    /// Throws unless the database's schema is exactly the version this binary knows: for commands that use the
    /// schema without migrating it.
    public static func requireCurrent(on connection: PostgresConnection) async throws {
        let status = try await status(on: connection)
        if status.isNewerThanBinary {
            throw SchemaError(
                code: .newerThanBinary, databaseVersion: status.currentVersion, knownVersion: status.latestVersion)
        }
        if status.needsMigration {
            throw SchemaError(
                code: .migrationNeeded, databaseVersion: status.currentVersion, knownVersion: status.latestVersion)
        }
    }

    /// Applies every pending migration, each in its own transaction under the advisory lock, and returns those
    /// applied (empty when the schema was current). Safe to run concurrently from several processes.
    ///
    /// - Parameter appliedBy: recorded in `gallra.schema_version.applied_by`; nil records `current_user`.
    /// - Throws: `SchemaError` (`.newerThanBinary`) if the database is newer than this binary, before any change.
    @discardableResult
    public static func migrate(
        on connection: PostgresConnection, appliedBy: String? = nil,
        logger: Logger = Logger(label: "gallra.engine")
    ) async throws -> [Migration] {
        try await migrate(on: connection, migrations: migrations, appliedBy: appliedBy, logger: logger)
    }

    /// `migrate` with a given list of migrations (tests add a later one to check upgrades).
    static func migrate(
        on connection: PostgresConnection, migrations: [Migration], appliedBy: String?, logger: Logger
    ) async throws -> [Migration] {
        let known = migrations.last?.version ?? 0
        var applied: [Migration] = []
        while true {
            let step = try await connection.transaction { connection -> Migration? in
                try await connection.execute("SELECT pg_advisory_xact_lock($1)", [.int64(migrationLockKey)])
                // Read after taking the lock: a concurrent migrator's commit is visible now (READ COMMITTED).
                let current = try await currentVersion(on: connection)
                if current > known {
                    throw SchemaError(code: .newerThanBinary, databaseVersion: current, knownVersion: known)
                }
                guard let next = migrations.first(where: { $0.version > current }) else { return nil }
                for statement in next.statements {
                    try await connection.execute(statement)
                }
                try await connection.execute(
                    """
                    INSERT INTO gallra.schema_version (version, description, applied_by)
                    VALUES ($1, $2, COALESCE($3, current_user))
                    """,
                    [.int32(Int32(next.version)), .text(next.description), appliedBy.map { .text($0) } ?? .null])
                return next
            }
            guard let step else { break }
            logger.notice(
                "applied gallra schema migration",
                metadata: ["schema.version": "\(step.version)", "schema.migration": "\(step.description)"])
            applied.append(step)
        }
        return applied
    }
}

import GallraCore

extension SchemaError: ExitStatusProviding {
    /// A schema this binary cannot use is the installation's to fix (78): retrying cannot help.
    public var exitStatus: ExitStatus { .configuration }
}
