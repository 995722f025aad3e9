import ArgumentParser
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct ShowPolicy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a stored policy: its document and its resolved plan."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The policy's name.")
    var name: String

    @Option(help: "A version other than the latest.")
    var version: Int?

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let policyName = try PolicyNames.parse(name)
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            let store = PolicyStore(connection: connection)
            let stored: PolicyVersion?
            if let version {
                stored = try await store.version(policyName, version)
            } else {
                stored = try await store.latest(policyName)
            }
            guard let stored else {
                await connection.close()
                let which = version.map { " version \($0)" } ?? ""
                throw CommandFailure(
                    .dataError, "no policy \(name)\(which) is stored; gallra policy list shows the stored ones")
            }
            let catalog = try await CatalogReader.read(on: connection)
            let guards = try await ConsentGuards.installed(policy: stored.name, on: connection).map(GuardReport.init)
            await connection.close()
            let file = PolicyFile(parsing: stored.definition, path: "gallra.policy \(stored.name) v\(stored.version)")
            let validation = file.policies.first.map { $0.validate(against: catalog) }
            switch output.format {
            case .json:
                try JSONOutput.print(
                    ShowReport(
                        name: stored.name, version: stored.version, state: stored.state,
                        digest: stored.digest, source: stored.source, appliedAt: stored.appliedAt,
                        appliedBy: stored.appliedBy, definition: file.policies.first?.policy,
                        diagnostics: (file.diagnostics + (validation?.diagnostics ?? [])).map(\.description),
                        plan: validation?.resolved, guards: guards))
            case .text:
                let definition = file.policies.first?.policy
                Swift.print(
                    """
                    policy   \(stored.name) version \(stored.version) (\(stored.state.rawValue))
                    purpose  \(Self.purposeText(definition?.purpose))
                    basis    \(definition?.legalBasis.map { "\($0) (GDPR \($0.article))" } ?? "(not stated)")\(Self.collectText(definition, guards: guards))
                    applied  \(TimeText.readable(stored.appliedAt)) by \(stored.appliedBy) from \(stored.source)
                    digest   \(stored.digest)

                    \(JSONText.pretty(stored.definition))

                    """)
                for diagnostic in file.diagnostics + (validation?.diagnostics ?? []) {
                    Swift.print(diagnostic.description)
                }
                if let plan = validation?.resolved { Swift.print(plan.render()) }
            }
        }
    }

    /// For `collect: with_consent` (or guards left installed), a `collect` line and the guards installed, one per
    /// line, each starting with a line break; empty for `collect: always`, the default.
    static func collectText(_ policy: Policy?, guards: [GuardReport]) -> String {
        var lines: [String] = []
        if policy?.collection == .withConsent {
            lines.append("with_consent (rows of subjects without consent in force are refused)")
            if guards.isEmpty {
                lines.append(
                    policy?.state == .active
                        ? "no guard installed: apply the policy again to install them"
                        : "no guard installed: they are installed while the policy is active")
            }
        } else if !guards.isEmpty {
            lines.append(
                "always, yet guards of an earlier version are installed: apply the policy again to remove them")
        }
        lines += guards.map(\.line)
        guard !lines.isEmpty else { return "" }
        return "\ncollect  " + lines.joined(separator: "\n         ")
    }

    /// The purpose, its further lines indented under the first.
    static func purposeText(_ purpose: String?) -> String {
        guard let purpose else { return "(not stated)" }
        return purpose.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n         ")
    }
}
