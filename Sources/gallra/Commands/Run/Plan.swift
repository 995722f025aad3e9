import ArgumentParser
import GallraCore
import GallraEngine
import GallraPostgres

struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a run would do now (or at --as-of), changing nothing.",
        discussion: """
            A dry run in one READ ONLY transaction: for each policy (drafts included, marked), the subjects \
            expiring, exempted, and held (expiring, but a legal hold in force keeps them: gallra hold), whether the limits would refuse it, and per data point the rows that \
            would be deleted, anonymized or retained (shared with rows that do not expire). The numbers are \
            those a live run at the same instant does.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var selection: RunSelection

    @Option(help: "List up to N expiring subject keys per policy.")
    var showKeys: Int = 0

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            let runnable = try await RunnablePolicies.load(
                on: connection, names: selection.policies, includeDrafts: true)
            let options = RunOptions(
                mode: .dry, asOf: selection.instant, trigger: "manual", showKeys: max(0, showKeys))
            let report = try await Engine(connection: connection, auditKey: nil, logger: context.logger).run(
                runnable.policies, options: options)
            await connection.close()
            try RunOutput.print(
                report, invalid: runnable.invalid, warnings: runnable.warnings, format: selection.output.format,
                stored: selection.policies.isEmpty ? runnable.stored : nil)
            if !runnable.invalid.isEmpty {
                throw CommandFailure(.dataError, "\(runnable.invalid.count) policy(ies) invalid; see above")
            }
        }
    }
}
