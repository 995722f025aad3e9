import ArgumentParser
import GallraEngine
import GallraPolicy
import GallraPostgres

struct ShowConsent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show whether a customer's consent is in force, per policy, and its history.",
        discussion: """
            Without --policy, every policy whose subjects live in the customer's table. The history lists each \
            grant and withdrawal: when, under which version of the policy, from where.

            EXAMPLE:
              gallra consent show --subject shop.customer:1234
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The customer: the subject table, a colon, and the key.", valueName: "table:key"))
    var subject: String

    @Option(help: ArgumentHelp("Only this policy.", valueName: "name"))
    var policy: String?

    @OptionGroup var output: FormatOptions

    func validate() throws {
        _ = try SubjectReference(parsing: subject)
    }

    struct Report: Encodable {
        struct Policy: Encodable {
            var policy: String
            var inForce: Bool
        }
        struct Event: Encodable {
            var event: String
            var policy: String
            var policyVersion: Int
            var recordedAt: String
            var source: String?
            var evidence: String?
            var recordedBy: String
        }
        var subject: String
        var policies: [Policy]
        var history: [Event]
    }

    func run() async throws {
        try await reportingFailures {
            let reference = try SubjectReference(parsing: subject)
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            let events: [ConsentEvent]
            do {
                events = try await ConsentRegistry(connection: connection).history(
                    table: reference.table.description, key: reference.key, policy: policy)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            // The latest event per policy decides, as in gallra.consent_in_force.
            var latest: [String: ConsentEvent.Kind] = [:]
            for event in events { latest[event.policy] = event.event }
            var names = Set(latest.keys)
            if let policy { names.insert(policy) }
            let report = Report(
                subject: reference.description,
                policies: names.sorted().map { Report.Policy(policy: $0, inForce: latest[$0] == .granted) },
                history: events.map {
                    Report.Event(
                        event: $0.event.rawValue, policy: $0.policy, policyVersion: $0.policyVersion,
                        recordedAt: TimeText.rfc3339(unixMicroseconds: $0.recordedAtMicroseconds), source: $0.source,
                        evidence: $0.evidence, recordedBy: $0.recordedBy)
                })
            switch output.format {
            case .json: try JSONOutput.print(report)
            case .text:
                guard !report.policies.isEmpty else {
                    Swift.print("\(reference) has no consent recorded")
                    return
                }
                for entry in report.policies {
                    Swift.print("\(entry.policy): consent \(entry.inForce ? "in force" : "NOT in force")")
                }
                guard !events.isEmpty else { return }
                Swift.print("")
                let table = TextTable(header: ["EVENT", "POLICY", "VERSION", "WHEN", "SOURCE"])
                for event in events {
                    table.add([
                        event.event.rawValue, event.policy, String(event.policyVersion),
                        TimeText.readable(unixMicroseconds: event.recordedAtMicroseconds), event.source ?? "-",
                    ])
                }
                Swift.print(table.render())
            }
        }
    }
}
