import ArgumentParser
import GallraEngine
import GallraPolicy
import GallraPostgres

struct ListConsent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Count the customers with consent in force to a policy, and grants and withdrawals per month.",
        discussion: """
            Months are calendar months in UTC. No customer is named.

            EXAMPLE:
              gallra consent list --policy revoked-newsletter-consent
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The policy's name.", valueName: "name"))
    var policy: String

    @OptionGroup var output: FormatOptions

    struct Report: Encodable {
        struct Month: Encodable {
            var month: String
            var granted: Int
            var revoked: Int
        }
        var policy: String
        var inForce: Int
        var months: [Month]
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            let summary: ConsentSummary
            do {
                summary = try await ConsentRegistry(connection: connection).summary(policy: policy)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            let report = Report(
                policy: summary.policy, inForce: summary.inForce,
                months: summary.months.map { Report.Month(month: $0.month, granted: $0.granted, revoked: $0.revoked) })
            switch output.format {
            case .json: try JSONOutput.print(report)
            case .text:
                Swift.print(
                    "\(policy): \(report.inForce) customer\(report.inForce == 1 ? "" : "s") with consent in force")
                guard !report.months.isEmpty else { return }
                let table = TextTable(header: ["MONTH", "GRANTED", "REVOKED"])
                for month in report.months { table.add([month.month, String(month.granted), String(month.revoked)]) }
                Swift.print(table.render())
            }
        }
    }
}
