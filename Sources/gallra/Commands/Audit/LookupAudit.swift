import ArgumentParser
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct LookupAudit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookup",
        abstract: "Say when, by which policy and run, and how a subject was processed.",
        discussion: """
            The trail holds subjects only as digests: HMAC-SHA-256 of TABLE:KEY under the audit key. lookup \
            computes the digest of the subject given, exactly as a run does, and lists every record of it: \
            the block and its time, the run, the policy and version, and the rows deleted, anonymized and \
            retained per table. TABLE is schema-qualified (shop.customer; quote mixed-case names as in SQL: \
            '"Shop"."Customer":7'); KEY is the key's text form. A key needs no row, since most subjects in the \
            trail are erased; TABLE:COLUMN=VALUE (shop.customer:email=ada@example.org) finds the key of a subject \
            whose row is still there (anonymized), and exits 66 when no row has that value. The key of the subject \
            is not logged, and the audit key never appears in any output. Next to the runs, lookup lists the \
            subject's register extracts (gallra export) and its events: legal holds placed and released (gallra \
            hold), corrections.

            EXAMPLES:
              gallra audit lookup --subject shop.customer:1234
              gallra audit lookup --subject shop.customer:email=ada@example.org --format json

            The audit key is read from --audit-key-file, else the setting audit.key_file \
            ($GALLRA_AUDIT_KEY_FILE), else $CREDENTIALS_DIRECTORY/audit-key under systemd. Without one, lookup \
            exits 78. A subject with no record prints "no record of ..." and exits 0: that is an answer, not \
            a failure.
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var subject: SubjectOption

    @Option(help: ArgumentHelp("The audit key file (overrides audit.key_file).", valueName: "path"))
    var auditKeyFile: String?

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let reference = try subject.reference()
            guard let keyPath = auditKeyFile ?? context.settings.auditKeyFile else {
                throw CommandFailure(
                    .configuration,
                    "no audit key: lookup needs the key the trail's digests were made with. Give "
                        + "--audit-key-file PATH, set audit.key_file in the configuration (or GALLRA_AUDIT_KEY_FILE), "
                        + "or run it where systemd passes the audit-key credential ($CREDENTIALS_DIRECTORY).")
            }
            let key = try AuditKey.read(path: keyPath)
            let connection = try await context.connectToCurrentSchema()
            let subject: String
            let digest: String
            let entries: [AuditSubjectEntry]
            let exports: [AuditExport]
            let events: [AuditEvent]
            do {
                // A key needs no row: the trail is mostly about subjects already erased. A column's value can only
                // be turned into a key by the row that holds it.
                let found: (table: String, key: String)
                if let typed = reference.key {
                    found = (reference.table.description, typed)
                } else {
                    let row = try await reference.find(on: connection)
                    found = (row.table.description, row.key)
                }
                subject = "\(found.table):\(found.key)"
                digest = key.digester.digest(table: found.table, key: found.key)
                entries = try await AuditTrail.lookup(digest: digest, on: connection)
                exports = try await AuditExports.lookup(digest: digest, on: connection)
                events = try await AuditEvents.lookup(digest: digest, on: connection)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            let report = LookupReport(
                subject: subject, subjectDigest: digest, entries: entries, exports: exports, events: events)
            switch output.format {
            case .json: try JSONOutput.print(report)
            case .text: Swift.print(report.text)
            }
        }
    }
}

/// What `gallra audit lookup` found of one subject.
struct LookupReport: Encodable {
    struct Record: Encodable {
        var block: Int64
        var createdAt: String
        var run: String
        var policy: String
        var policyVersion: Int
        var counts: [AuditCount]
    }

    /// A register extract of the subject (`gallra export`).
    struct Export: Encodable {
        var sequence: Int64
        var createdAt: String
        var format: String
        var databaseRole: String
        var osUser: String
    }

    /// A hold placed or released, or a correction (`gallra.audit_event`).
    struct Event: Encodable {
        var sequence: Int64
        var createdAt: String
        /// `hold_placed`, `hold_released` or `correction`.
        var kind: String
        /// The event's JSON object as recorded (a hold's id, policy, until and reason; never the key).
        var detail: String
        var databaseRole: String
        var osUser: String
    }

    var subject: String
    var subjectDigest: String
    var found: Bool
    var records: [Record]
    var exports: [Export]
    var events: [Event]
    private var entries: [AuditSubjectEntry]

    enum CodingKeys: String, CodingKey {
        case subject, subjectDigest, found, records, exports, events
    }

    init(
        subject: String, subjectDigest: String, entries: [AuditSubjectEntry], exports: [AuditExport] = [],
        events: [AuditEvent] = []
    ) {
        self.entries = entries
        self.subject = subject
        self.subjectDigest = subjectDigest
        found = !entries.isEmpty || !exports.isEmpty || !events.isEmpty
        self.events = events.map {
            Event(
                sequence: $0.sequence, createdAt: TimeText.rfc3339(unixMicroseconds: $0.createdAtMicroseconds),
                kind: $0.kind.rawValue, detail: $0.detail, databaseRole: $0.databaseRole, osUser: $0.osUser)
        }
        self.exports = exports.map {
            Export(
                sequence: $0.sequence, createdAt: TimeText.rfc3339(unixMicroseconds: $0.createdAtMicroseconds),
                format: $0.format, databaseRole: $0.databaseRole, osUser: $0.osUser)
        }
        records = entries.map {
            Record(
                block: $0.block, createdAt: TimeText.rfc3339(unixMicroseconds: $0.createdAtMicroseconds), run: $0.run,
                policy: $0.policy,
                policyVersion: $0.policyVersion, counts: $0.counts)
        }
    }

    var text: String {
        guard found else {
            return "no record of \(subject) in the audit trail (subject digest \(subjectDigest); "
                + "a digest made with another audit key matches nothing)"
        }
        var lines = [
            entries.isEmpty
                ? "\(subject) was never processed by a run (subject digest \(subjectDigest))"
                : "\(subject) was processed \(entries.count == 1 ? "once" : "\(entries.count) times") "
                    + "(subject digest \(subjectDigest)):"
        ]
        for record in entries {
            lines.append(
                "  \(TimeText.readable(unixMicroseconds: record.createdAtMicroseconds))  block \(record.block)  policy \(record.policy) "
                    + "v\(record.policyVersion)  run \(record.run)")
            for count in record.counts {
                lines.append(
                    "    \(count.table) \(count.action.rawValue) \(count.rows) row\(count.rows == 1 ? "" : "s")")
            }
        }
        if !exports.isEmpty {
            lines.append("extracts (gallra export):")
            for export in exports {
                lines.append(
                    "  \(export.createdAt.replacing("T", with: " ").replacing("Z", with: " UTC"))  "
                        + "\(export.format)  by role \(export.databaseRole), user \(export.osUser)")
            }
        }
        if !events.isEmpty {
            lines.append("holds and corrections:")
            for event in events {
                lines.append(
                    "  \(event.createdAt.replacing("T", with: " ").replacing("Z", with: " UTC"))  \(event.kind)  "
                        + "\(event.detail)  by role \(event.databaseRole), user \(event.osUser)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
