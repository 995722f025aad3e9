import ArgumentParser
import GallraEngine
import GallraPolicy
import GallraPostgres

struct HoldCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold",
        abstract: "Place, list and release legal holds: a stop on one subject that every policy respects.",
        discussion: """
            A legal hold keeps one subject's data as it is (litigation, an open dispute, an authority's request): \
            no policy, retention or on request, deletes or anonymizes it while the hold is in force. A hold stops \
            every policy over the subject's table, or with --policy only that one. It ends when released (gallra \
            hold release) or, with --until, by itself at that time. gallra plan, run and explain count a subject \
            a hold keeps as held; once the hold ends, the next run processes the subject if it is due.

            Placing and releasing are recorded in gallra.audit_event, chained like the audit trail: gallra audit \
            lookup lists a subject's holds next to its processing, gallra audit verify checks the chain. With the \
            audit key (--audit-key-file, or audit.key_file) the hold and its records name the subject by its \
            digest too; without one, gallra audit lookup cannot list them.

            The subject is TABLE:KEY, the policies' subject table (schema-qualified) and the key, e.g. \
            shop.customer:1234, or TABLE:COLUMN=VALUE for a value exactly one row has, e.g. \
            shop.customer:email=ada@example.org.

            EXAMPLES:
              gallra hold add --subject shop.customer:1234 --reason "case 2026-114"
              gallra hold add --subject shop.customer:email=ada@example.org --reason "chargeback 88812" \\
                  --until 2027-03-31 --policy delete-inactive-customers
              gallra hold list
              gallra hold list --all --subject shop.customer:1234 --format json
              gallra hold release 7 --reason "case 2026-114 closed"
            """,
        subcommands: [AddHold.self, ListHolds.self, ReleaseHold.self]
    )
}

/// `--audit-key-file`: the optional audit key of the hold commands, to name the subject by its digest.
struct HoldAuditKeyOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The audit key file (overrides audit.key_file), to record the subject's digest.", valueName: "path"))
    var auditKeyFile: String?

    /// The digester of the key given or configured; nil when there is none.
    func digester(_ context: CommandContext) throws -> SubjectDigester? {
        try (auditKeyFile ?? context.settings.auditKeyFile).map { try AuditKey.read(path: $0).digester }
    }
}

/// A hold as the hold commands print it.
struct HoldReport: Encodable {
    var id: Int64
    var subjectTable: String
    /// The key; nil once the subject was processed after the hold ended.
    var subjectKey: String?
    var subjectDigest: String?
    var policy: String?
    var state: String
    var reason: String
    var placedAt: String
    var placedBy: String
    var until: String?
    var releasedAt: String?
    var releasedBy: String?
    var releaseReason: String?

    init(_ hold: Hold) {
        id = hold.id
        subjectTable = hold.subjectTable
        subjectKey = hold.subjectKey
        subjectDigest = hold.subjectDigest
        policy = hold.policy
        state = hold.state.rawValue
        reason = hold.reason
        placedAt = TimeText.rfc3339(unixMicroseconds: hold.placedAtMicroseconds)
        placedBy = hold.placedBy
        until = hold.untilMicroseconds.map { TimeText.rfc3339(unixMicroseconds: $0) }
        releasedAt = hold.releasedAtMicroseconds.map { TimeText.rfc3339(unixMicroseconds: $0) }
        releasedBy = hold.releasedBy
        releaseReason = hold.releaseReason
    }

    private enum CodingKeys: String, CodingKey {
        case id, subjectTable, subjectKey, subjectDigest, policy, state, reason, placedAt, placedBy, until
        case releasedAt, releasedBy, releaseReason
    }

    /// Every key, null when unknown.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(subjectTable, forKey: .subjectTable)
        try container.encode(subjectKey, forKey: .subjectKey)
        try container.encode(subjectDigest, forKey: .subjectDigest)
        try container.encode(policy, forKey: .policy)
        try container.encode(state, forKey: .state)
        try container.encode(reason, forKey: .reason)
        try container.encode(placedAt, forKey: .placedAt)
        try container.encode(placedBy, forKey: .placedBy)
        try container.encode(until, forKey: .until)
        try container.encode(releasedAt, forKey: .releasedAt)
        try container.encode(releasedBy, forKey: .releasedBy)
        try container.encode(releaseReason, forKey: .releaseReason)
    }

    /// `shop.customer:1234`, or the table and the digest's start once the key is gone.
    var subject: String {
        if let subjectKey { return "\(subjectTable):\(subjectKey)" }
        return "\(subjectTable) (digest \(subjectDigest.map { String($0.prefix(12)) } ?? "unknown"))"
    }

    /// `until 2027-03-31 00:00:00 UTC` or `until released`.
    var untilText: String {
        until.map { "until \($0.replacing("T", with: " ").replacing("Z", with: " UTC"))" } ?? "until released"
    }
}
