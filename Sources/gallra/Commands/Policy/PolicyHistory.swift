import ArgumentParser
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct PolicyHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List every stored version of a policy: when, by whom, from where, in which state."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The policy's name.")
    var name: String

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let policyName = try PolicyNames.parse(name)
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            let versions = try await PolicyStore(connection: connection).history(policyName)
            await connection.close()
            guard !versions.isEmpty else {
                throw CommandFailure(
                    .dataError, "no policy \(name) is stored; gallra policy list shows the stored ones")
            }
            switch output.format {
            case .json:
                try JSONOutput.print(
                    versions.map {
                        HistoryRow(
                            version: $0.version, state: $0.state, digest: $0.digest, appliedAt: $0.appliedAt,
                            appliedBy: $0.appliedBy, source: $0.source)
                    })
            case .text:
                let table = TextTable(header: ["VERSION", "STATE", "APPLIED", "BY", "SOURCE", "DIGEST"])
                for version in versions {
                    table.add([
                        String(version.version), version.state.rawValue, TimeText.readable(version.appliedAt),
                        version.appliedBy, version.source, String(version.digest.prefix(12)),
                    ])
                }
                Swift.print(table.render())
            }
        }
    }
}
