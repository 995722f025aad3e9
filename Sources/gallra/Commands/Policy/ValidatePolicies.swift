import ArgumentParser
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct ValidatePolicies: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check policy files, and show what each would touch.",
        discussion: """
            Checks the syntax of every file, then, when a database is configured, checks each policy against \
            the live catalog (tables, columns, types, links, blocked deletes, grants) and prints its resolved \
            plan: every table it would touch, the join path, and the action, in the order gallra applies them. \
            Exits 65 when any policy has an error. Nothing is written.

            Against a database, a last line counts what the policies leave out, the files taking the place of \
            the stored policies of the same names: tables whose rows belong to a subject and that no policy \
            names in data:, and personal-looking columns in tables no policy covers (gallra policy coverage \
            lists them).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Policy files, or directories of *.yaml, *.yml and *.json files.")
    var paths: [String]

    @Flag(help: "Check the files alone, without the database even when one is configured.")
    var offline = false

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let files = try PolicyFiles.read(paths)
            var report = ValidationReport(files: files)
            if offline || !context.settings.hasDatabase {
                report.checkedAgainstCatalog = false
                report.uncheckedBecause = offline ? .offline : .noDatabase
            } else {
                let connection = try await context.connect()
                let catalog: Catalog
                let stored: [Policy]
                do {
                    catalog = try await CatalogReader.read(on: connection)
                    stored = try await Self.storedPolicies(on: connection)
                } catch {
                    await connection.close()
                    throw error
                }
                await connection.close()
                report.validate(against: catalog)
                // The files as they would be stored: each replaces the stored policy of its name.
                let files = report.policies.map(\.parsed.policy)
                let names = Set(files.map(\.name))
                report.coverage = Coverage(
                    policies: files + stored.filter { !names.contains($0.name) }, catalog: catalog)
            }
            report.print(format: output.format)
            if report.hasErrors { throw CommandFailure(.dataError, report.failureSummary) }
        }
    }
}

extension ValidatePolicies {
    /// The latest stored version of each policy; none in a database gallra has not migrated.
    static func storedPolicies(on connection: PostgresConnection) async throws -> [Policy] {
        do {
            return try await PolicyStore(connection: connection).loadAll().policies.map(\.policy)
        } catch let error as PostgresError where error.isUndefinedTable {
            return []
        }
    }
}
