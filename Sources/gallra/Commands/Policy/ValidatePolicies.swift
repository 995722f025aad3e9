import ArgumentParser
import GallraCore
import GallraEngine
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
            } else {
                let connection = try await context.connect()
                let catalog = try await CatalogReader.read(on: connection)
                await connection.close()
                report.validate(against: catalog)
            }
            report.print(format: output.format)
            if report.hasErrors { throw CommandFailure(.dataError, report.failureSummary) }
        }
    }
}
