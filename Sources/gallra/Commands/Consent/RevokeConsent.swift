import ArgumentParser
import GallraEngine
import GallraPolicy
import GallraPostgres

struct RevokeConsent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Record that a customer withdrew consent to a policy.",
        discussion: """
            Works on a disabled policy too: withdrawing consent must stay possible. If no consent is in force, \
            nothing new is recorded, and the command says so. The customer's data covered by the policy is then removed by the policy's \
            own rules (e.g. after its grace period).

            EXAMPLE:
              gallra consent revoke --subject shop.customer:1234 --policy revoked-newsletter-consent --source phone
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var event: ConsentEventOptions

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            try await ConsentEventRecording.record(.revoked, event, global: global, format: output.format)
        }
    }
}

/// What `grant` and `revoke` do: one call of the registry, and whether it recorded an event.
enum ConsentEventRecording {
    typealias Kind = ConsentEvent.Kind

    struct Report: Encodable {
        var subject: String
        var policy: String
        var event: String
        /// Whether consent is in force after the call.
        var inForce: Bool
        /// Whether the call recorded a new event; false when consent already was as asked.
        var recorded: Bool
        /// The event recorded, or the one that already stood; nil for a revocation of consent never granted.
        var eventId: Int64?
        /// When that event was recorded (RFC 3339, UTC).
        var recordedAt: String?
    }

    static func record(
        _ kind: Kind, _ options: ConsentEventOptions, global: GlobalOptions, format: OutputFormat
    ) async throws {
        let reference = try options.subject.reference()
        let context = try await CommandContext.start(global)
        let connection = try await context.connectToCurrentSchema()
        let registry = ConsentRegistry(connection: connection)
        let subject: FoundSubject
        let recording: ConsentRecording
        do {
            subject = try await reference.find(on: connection)
            switch kind {
            case .granted:
                recording = try await registry.grant(
                    table: subject.table.description, key: subject.key, policy: options.policy,
                    source: options.source, evidence: options.evidence)
            case .revoked:
                recording = try await registry.revoke(
                    table: subject.table.description, key: subject.key, policy: options.policy,
                    source: options.source, evidence: options.evidence)
            }
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        let report = Report(
            subject: subject.reference, policy: options.policy, event: kind.rawValue, inForce: kind == .granted,
            recorded: recording.recorded, eventId: recording.eventId,
            recordedAt: recording.recordedAtMicroseconds.map { TimeText.rfc3339(unixMicroseconds: $0) })
        switch format {
        case .json: try JSONOutput.print(report)
        case .text:
            let consent = "consent of \(subject.reference) to \(options.policy)"
            guard let id = recording.eventId, let at = recording.recordedAtMicroseconds else {
                Swift.print("\(subject.reference) never gave consent to \(options.policy): nothing to withdraw")
                return
            }
            let when = TimeText.readable(unixMicroseconds: at)
            switch (kind, recording.recorded) {
            case (.granted, true): Swift.print("\(consent) is in force (event \(id))")
            case (.granted, false):
                Swift.print("\(consent) is already in force since \(when), nothing recorded (event \(id))")
            case (.revoked, true): Swift.print("\(consent) is withdrawn (event \(id))")
            case (.revoked, false):
                Swift.print("\(consent) is not in force: withdrawn \(when), nothing recorded (event \(id))")
            }
        }
    }
}
