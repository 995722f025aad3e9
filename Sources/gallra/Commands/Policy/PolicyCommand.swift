import ArgumentParser

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Validate, store and manage retention policies.",
        discussion: """
            Policies are YAML (or JSON) files; docs/policy-language.md describes every key. `apply` validates \
            them against the database and stores a new version of each changed policy in gallra.policy, where \
            the daemon picks it up. `coverage` lists the tables and columns of the subjects' data that no \
            policy covers.
            """,
        subcommands: [
            ValidatePolicies.self, ApplyPolicies.self, ListPolicies.self, ShowPolicy.self, PolicyHistory.self,
            DisablePolicy.self, PolicyCoverageCommand.self,
        ]
    )
}
