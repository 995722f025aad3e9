import ArgumentParser
import Foundation
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Validate, store and manage retention policies.",
        discussion: """
            Policies are YAML (or JSON) files; docs/policy-language.md describes every key. `apply` validates \
            them against the database and stores a new version of each changed policy in gallra.policy, where \
            the daemon picks it up.
            """,
        subcommands: [
            ValidatePolicies.self, ApplyPolicies.self, ListPolicies.self, ShowPolicy.self, PolicyHistory.self,
            DisablePolicy.self,
        ]
    )
}

// MARK: - validate

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

// MARK: - apply

struct ApplyPolicies: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Validate policy files and store the changed policies in the database.",
        discussion: """
            All files or none: every policy is validated against the live catalog first, and if any has an \
            error nothing is stored (exit 65). A policy equal to its stored version stores nothing; a changed \
            one becomes a new version. The running daemon picks the changes up without a restart.
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
            let changes = try await PolicyStore(connection: connection).apply(
                report.policies.map { ($0.parsed.policy, $0.file) }, dryRun: dryRun)
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
                try JSONOutput.print(ApplyReport(dryRun: dryRun, changes: changes.map(ChangeReport.init)))
            case .text:
                for change in changes { Swift.print(ChangeReport(change).line(dryRun: dryRun)) }
                if dryRun { Swift.print("(dry run: nothing was stored)") }
            }
        }
    }
}

// MARK: - list, show, history, disable

struct ListPolicies: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the stored policies: version, state, validity, schedule and next run."
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
                    problem: nil, schedule: nil, nextRun: nil)
                if let invalid = load.invalid.first(where: { $0.name == version.name && $0.version == version.version })
                {
                    row.problem = invalid.reason
                } else if let stored = load.policies.first(where: { $0.stored.name == version.name }) {
                    let validation = StoredPolicies.validate(stored, against: catalog)
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
                let table = TextTable(header: ["POLICY", "VERSION", "STATE", "VALID", "SCHEDULE", "NEXT RUN"])
                for row in rows {
                    table.add([
                        row.name, String(row.version), row.state.rawValue, row.valid ? "yes" : "NO",
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
                        plan: validation?.resolved))
            case .text:
                Swift.print(
                    """
                    policy   \(stored.name) version \(stored.version) (\(stored.state.rawValue))
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
}

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

struct DisablePolicy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable",
        abstract: "Stop a policy: store a new version of it in state disabled.",
        discussion: "The history keeps every version; apply the file again (state: active) to enable it."
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
            let change = try await PolicyStore(connection: connection).disable(
                policyName, source: "gallra policy disable")
            if change.storesVersion {
                try? await connection.notify(NotificationChannel.policy, payload: change.name.rawValue)
            }
            await connection.close()
            switch output.format {
            case .json: try JSONOutput.print(ChangeReport(change))
            case .text:
                if change.storesVersion {
                    Swift.print("disabled \(name): version \(change.version)")
                } else {
                    Swift.print("\(name) is already disabled (version \(change.version))")
                }
            }
        }
    }
}
