import ArgumentParser
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct ApplyPolicies: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Validate policy files and store the changed policies in the database.",
        discussion: """
            All files or none: every policy is validated against the live catalog first, and if any has an \
            error nothing is stored (exit 65). A policy equal to its stored version stores nothing; a changed \
            one becomes a new version. The running daemon picks the changes up without a restart. An active policy with collect: with_consent installs \
            its consent guards (triggers on the tables it guards) in the same transaction; a changed one replaces them, \
            and one no longer active or collecting with consent removes them.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Policy files, or directories of *.yaml, *.yml and *.json files.")
    var paths: [String]

    @Flag(help: "Show what would change, and store nothing.")
    var dryRun = false

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let files = try PolicyFiles.read(paths)
            var report = ValidationReport(files: files)
            guard !report.hasErrors else {
                report.uncheckedBecause = .fileErrors
                report.print(format: output.format)
                throw CommandFailure(.dataError, report.failureSummary + "; nothing was stored")
            }
            let connection = try await context.connectToCurrentSchema()
            report.validate(against: try await CatalogReader.read(on: connection))
            guard !report.hasErrors else {
                await connection.close()
                report.print(format: output.format)
                throw CommandFailure(.dataError, report.failureSummary + "; nothing was stored")
            }
            var guards: [PolicyName: [ConsentGuard]] = [:]
            for entry in report.policies {
                if let resolved = entry.validation?.resolved {
                    guards[resolved.name] = ConsentGuard.guards(of: resolved)
                }
            }
            // What the apply does to consent guards, as its transaction will decide it (ConsentGuards.changes).
            let installedBefore = Dictionary(
                grouping: try await ConsentGuards.installed(policy: nil, on: connection), by: \.policy)
            let changes = try await PolicyStore(connection: connection).apply(
                report.policies.map { ($0.parsed.policy, $0.file) }, guards: guards, dryRun: dryRun)
            var reports = changes.map(ChangeReport.init)
            for (index, entry) in report.policies.enumerated() where index < reports.count {
                let policy = entry.parsed.policy
                let wanted = ConsentGuard.wantsGuards(policy) ? guards[policy.name] ?? [] : []
                let (install, drop) = ConsentGuards.changes(
                    wanted: wanted, installed: installedBefore[policy.name.rawValue] ?? [])
                reports[index].guardsInstalled = install.map(\.place)
                reports[index].guardsRemoved = drop.map(\.place)
            }
            if !dryRun {
                // A running daemon picks the changes up at once.
                for change in changes where change.storesVersion {
                    try? await connection.notify(NotificationChannel.policy, payload: change.name.rawValue)
                }
            }
            await connection.close()
            report.printDiagnostics()
            switch output.format {
            case .json:
                try JSONOutput.print(ApplyReport(dryRun: dryRun, changes: reports))
            case .text:
                for change in reports { Swift.print(change.line(dryRun: dryRun)) }
                if dryRun { Swift.print("(dry run: nothing was stored)") }
            }
        }
    }
}
