import ArgumentParser
import GallraEngine
import GallraPolicy
import GallraPostgres

struct DisablePolicy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable",
        abstract: "Stop a policy: store a new version of it in state disabled.",
        discussion: """
            The history keeps every version; apply the file again (state: active) to enable it. A policy with \
            collect: with_consent loses its consent guards in the same transaction: the shop may write its tables \
            again without consent.
            """
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
            let guards = try await ConsentGuards.installed(policy: policyName.rawValue, on: connection)
            let change = try await PolicyStore(connection: connection).disable(
                policyName, source: "gallra policy disable")
            var report = ChangeReport(change)
            report.guardsRemoved = guards.map(\.place)
            if change.storesVersion {
                try? await connection.notify(NotificationChannel.policy, payload: change.name.rawValue)
            }
            await connection.close()
            switch output.format {
            case .json: try JSONOutput.print(report)
            case .text:
                if change.storesVersion {
                    Swift.print("disabled \(name): version \(change.version)")
                } else {
                    Swift.print("\(name) is already disabled (version \(change.version))")
                }
                for place in report.guardsRemoved { Swift.print("    consent guard removed from \(place)") }
            }
        }
    }
}
