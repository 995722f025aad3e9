import ArgumentParser
import GallraEngine
import GallraPostgres
import Logging

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or upgrade gallra's schema in the database.",
        discussion: """
            Creates the schema `gallra` (policies, runs, audit trail) or brings it up to this version of \
            gallra. Safe to run again and from several hosts at once: migrations run under an advisory lock, \
            each in its own transaction. A database migrated by a newer gallra is refused (exit 78). \
            `gallra run` migrates at start too.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Only say whether the schema is current (exit 0) or needs migrating (exit 78).")
    var check = false

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connect()
            if check {
                try await Schema.requireCurrent(on: connection)
                await connection.close()
                print("gallra schema is current (version \(Schema.latestVersion))")
                return
            }
            // Each applied migration is this command's answer, printed below; the engine's log line of it would
            // say it twice. At debug level and below, the log shows it as well.
            var logger = context.logger
            if logger.logLevel > .debug { logger.logLevel = max(logger.logLevel, .warning) }
            let applied = try await Schema.migrate(on: connection, logger: logger)
            let version = try await Schema.currentVersion(on: connection)
            await connection.close()
            if applied.isEmpty {
                print("gallra schema is current (version \(version)); nothing to do")
            }
            for migration in applied {
                print("applied migration \(migration.version): \(migration.description)")
            }
        }
    }
}
