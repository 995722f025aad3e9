import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraEngine
import GallraPolicy
import GallraPostgres

struct ListPolicies: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the stored policies: version, state, legal basis, validity, schedule and next run."
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            let store = PolicyStore(connection: connection)
            let versions = try await store.list()
            let load = try await store.loadAll()
            let catalog = try await CatalogReader.read(on: connection)
            await connection.close()

            let now = Date()
            var rows: [PolicyListRow] = []
            for version in versions {
                var row = PolicyListRow(
                    name: version.name, version: version.version, state: version.state, valid: false,
                    problem: nil, schedule: nil, nextRun: nil, purpose: nil, legalBasis: nil)
                if let invalid = load.invalid.first(where: { $0.name == version.name && $0.version == version.version })
                {
                    row.problem = invalid.reason
                } else if let stored = load.policies.first(where: { $0.stored.name == version.name }) {
                    row.purpose = stored.policy.purpose
                    row.legalBasis = stored.policy.legalBasis
                    let validation = stored.validate(against: catalog)
                    row.valid = !validation.hasErrors
                    row.problem = validation.errors.first?.message
                    if let text = stored.policy.schedule, let schedule = try? Schedule(parsing: text) {
                        row.schedule = schedule.description
                        if version.state != .disabled { row.nextRun = schedule.nextFire(after: now) }
                    }
                }
                rows.append(row)
            }
            switch output.format {
            case .json:
                try JSONOutput.print(rows)
            case .text:
                if rows.isEmpty {
                    Swift.print("no policies stored yet; store some with gallra policy apply FILE")
                    return
                }
                let table = TextTable(header: ["POLICY", "VERSION", "STATE", "BASIS", "VALID", "SCHEDULE", "NEXT RUN"])
                for row in rows {
                    table.add([
                        row.name, String(row.version), row.state.rawValue, row.legalBasis?.rawValue ?? "-",
                        row.valid ? "yes" : "NO",
                        row.schedule ?? "(default)", row.nextRun.map(TimeText.readable) ?? "-",
                    ])
                }
                Swift.print(table.render())
                for row in rows where !row.valid {
                    Swift.print("\(row.name): \(row.problem ?? "invalid")")
                }
            }
        }
    }
}
