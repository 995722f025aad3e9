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
            grant and withdrawal: when, under which version of the policy, from where. The customer is \
            TABLE:KEY or TABLE:COLUMN=VALUE (a value exactly one customer has); a customer that does not exist \
            exits 66.

            EXAMPLES:
              gallra consent show --subject shop.customer:1234
              gallra consent show --subject shop.customer:email=ada@example.org --format json
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var subject: SubjectOption

    @Option(help: ArgumentHelp("Only this policy.", valueName: "name"))
    var policy: String?

    @OptionGroup var output: FormatOptions

    struct Report: Encodable {
        struct Policy: Encodable {
            var policy: String
            var inForce: Bool
            /// When the grant in force was recorded (RFC 3339, UTC); nil when none is in force.
            var grantedAt: String?
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
            let reference = try subject.reference()
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            // Whether consent is in force is the registry's own answer (gallra.consent_in_force), not worked out
            // here from the history.
            let found: FoundSubject
            let consent: SubjectConsent
            do {
                found = try await reference.find(on: connection)
                consent = try await ConsentRegistry(connection: connection).consent(
                    table: found.table.description, key: found.key, policy: policy)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            let report = Report(
                subject: found.reference,
                policies: consent.policies.map {
                    Report.Policy(
                        policy: $0.policy, inForce: $0.isInForce,
                        grantedAt: $0.grantedAtMicroseconds.map { TimeText.rfc3339(unixMicroseconds: $0) })
                },
                history: consent.events.map {
                    Report.Event(
                        event: $0.event.rawValue, policy: $0.policy, policyVersion: $0.policyVersion,
                        recordedAt: TimeText.rfc3339(unixMicroseconds: $0.recordedAtMicroseconds), source: $0.source,
                        evidence: $0.evidence, recordedBy: $0.recordedBy)
                })
            switch output.format {
            case .json: try JSONOutput.print(report)
            case .text:
                guard !report.policies.isEmpty else {
                    Swift.print("\(found.reference) has no consent recorded")
                    return
                }
                for entry in consent.policies {
                    if let since = entry.grantedAtMicroseconds {
                        Swift.print(
                            "\(entry.policy): consent in force since \(TimeText.readable(unixMicroseconds: since))")
                    } else {
                        Swift.print("\(entry.policy): consent NOT in force")
                    }
                }
                guard !consent.events.isEmpty else { return }
                Swift.print("")
                let table = TextTable(header: ["EVENT", "POLICY", "VERSION", "WHEN", "SOURCE"])
                for event in consent.events {
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
