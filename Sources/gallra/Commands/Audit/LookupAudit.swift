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
            exits 78.

            Without a record of a run, lookup says which of these holds: the subject exists and was not \
            processed (exit 0; gallra explain says why it is kept); no row has the key and the trail has no \
            record of it (exit 66); this key made none of the records of the policies over the table, which \
            another audit key made (exit 78: each block names the key of its digests by a check value that \
            reveals nothing of it). A table that does not exist exits 65.
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
            let digester = try AuditKey.read(path: keyPath).digester
            let report = try await context.withCurrentSchema { connection in
                try await Self.lookUp(reference, digester: digester, on: connection)
            }
            switch output.format {
            case .json: try JSONOutput.print(report)
            case .text: if report.failure == nil { Swift.print(report.text) }
            }
            if let failure = report.failure { throw failure }
        }
    }

    /// The subject's records, extracts and events under the key of `digester`, and what the absence of records
    /// means: a subject that exists and was not processed, no such subject, or a key that made none of the records
    /// of the table's policies.
    static func lookUp(
        _ reference: SubjectReference, digester: SubjectDigester, on connection: PostgresConnection
    ) async throws -> LookupReport {
        // A key needs no row: the trail is mostly about subjects already erased. A column's value can only be
        // turned into a key by the row that holds it.
        let table: QualifiedName
        let key: String
        var exists: Bool?
        if let typed = reference.key {
            (table, key) = (reference.table, typed)
        } else {
            let row = try await reference.find(on: connection)
            (table, key, exists) = (row.table, row.key, true)
        }
        let digest = digester.digest(table: table.description, key: key)
        var report = LookupReport(
            subject: "\(table):\(key)", subjectDigest: digest,
            entries: try await AuditTrail.lookup(digest: digest, on: connection),
            exports: try await AuditExports.lookup(digest: digest, on: connection),
            events: try await AuditEvents.lookup(digest: digest, on: connection))
        guard report.records.isEmpty else { return report }

        let catalog = try await CatalogReader.read(on: connection)
        if !report.found, catalog.table(table) == nil {
            throw CommandFailure(.dataError, catalog.missingTableMessage(table, what: "table"))
        }
        if exists == nil {
            do {
                _ = try await SubjectFinder.find(table: table, .key(key), on: connection)
                exists = true
            } catch let error as SubjectFinderError where error.code == .noSuchSubject {
                exists = false
            } catch let error as SubjectFinderError where error.code == .uncoveredTable {
                // No policy ever had its subjects there: no run can have processed one.
                guard report.found else {
                    throw CommandFailure(.noInput, "the audit trail has no record of the subject: \(error)")
                }
            }
        }
        report.subjectExists = exists
        let policies = try await PolicyStore(connection: connection).loadAll().policies.map(\.policy)
            .filter { (catalog.table($0.subject.table)?.name ?? $0.subject.table) == table }.map(\.name.rawValue)
        let byKey = try await AuditTrail.recordsByKey(
            policies: policies, keyCheck: digester.keyCheck, on: connection)
        report.judge(byKey: byKey, policies: policies, table: table)
        return report
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

    /// What the trail's answer means for the subject.
    enum Standing: String, Encodable {
        /// A run processed it: `records` says when and how.
        case processed
        /// Its row exists and no run processed it (`gallra explain` says why).
        case notProcessed = "not_processed"
        /// No row has its key, and the trail has no record of it under this key (exit 66).
        case noSuchSubject = "no_such_subject"
        /// This key made none of the records of the policies over its table, and another key made some (exit 78).
        case anotherAuditKey = "another_audit_key"
    }

    var subject: String
    var subjectDigest: String
    var found: Bool
    var standing: Standing
    /// Whether its row exists now; null when that was not asked (it was processed) or cannot be told.
    var subjectExists: Bool?
    var records: [Record]
    var exports: [Export]
    var events: [Event]
    /// Records of the table's policies made with another audit key, when some are and this key made some too.
    var note: String?
    private var entries: [AuditSubjectEntry]
    /// The exit status and message of an answer that is not a success.
    private(set) var failure: CommandFailure?

    enum CodingKeys: String, CodingKey {
        case subject, subjectDigest, found, standing, subjectExists, records, exports, events, note
    }

    init(
        subject: String, subjectDigest: String, entries: [AuditSubjectEntry], exports: [AuditExport] = [],
        events: [AuditEvent] = []
    ) {
        self.entries = entries
        self.subject = subject
        self.subjectDigest = subjectDigest
        found = !entries.isEmpty || !exports.isEmpty || !events.isEmpty
        standing = entries.isEmpty ? .notProcessed : .processed
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

    /// Decides what no record of a run means, from the row (``subjectExists``) and the records of `policies`, the
    /// table's, by the key that made them.
    mutating func judge(byKey: AuditRecordsByKey, policies: [String], table: QualifiedName) {
        guard entries.isEmpty else { return }
        func were(_ count: Int) -> String { count == 1 ? "was" : "were" }
        let others = byKey.otherKeys == 1 ? "1 record" : "\(byKey.otherKeys) records"
        let over = "the polic\(policies.count == 1 ? "y" : "ies") over \(table) (\(policies.joined(separator: ", ")))"
        if byKey.thisKey == 0, byKey.otherKeys > 0, !found {
            standing = .anotherAuditKey
            failure = CommandFailure(
                .configuration,
                "no record of the subject under this audit key (subject digest \(subjectDigest)), and this key made "
                    + "none of the records of \(over): the trail's \(others) of them \(were(byKey.otherKeys)) made with "
                    + "another audit key. Give that key (--audit-key-file, or audit.key_file) to look the subject up.")
            return
        }
        if byKey.otherKeys > 0 {
            note =
                "\(others) of \(over) \(were(byKey.otherKeys)) made with another audit key; a subject they processed "
                + "is found with that key"
        } else if byKey.thisKey == 0, byKey.unnamed > 0 {
            let unnamed = byKey.unnamed == 1 ? "1 record" : "\(byKey.unnamed) records"
            note =
                "\(unnamed) of \(over) \(were(byKey.unnamed)) written before blocks named their audit key (schema "
                + "version 13); if another key made them, a subject they processed is found only with that key"
        }
        switch subjectExists {
        case true?:
            standing = .notProcessed
        case false?, nil:
            guard !found else { return }
            standing = .noSuchSubject
            let row = subjectExists == false ? "no subject in \(table) has that key, and " : ""
            failure = CommandFailure(
                .noInput,
                "\(row)the audit trail has no record of it under this audit key (subject digest "
                    + "\(subjectDigest))\(note.map { "; \($0)" } ?? "")")
        }
    }

    var text: String {
        var lines: [String]
        if !entries.isEmpty {
            lines = [
                "\(subject) was processed \(entries.count == 1 ? "once" : "\(entries.count) times") "
                    + "(subject digest \(subjectDigest)):"
            ]
        } else if subjectExists == true {
            lines = [
                "\(subject) exists and was never processed by a run (subject digest \(subjectDigest)); "
                    + "gallra explain --subject \(subject) says, policy by policy, why it is kept"
            ]
        } else {
            lines = ["\(subject) was never processed by a run (subject digest \(subjectDigest))"]
        }
        if let note { lines.append("note: \(note)") }
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
