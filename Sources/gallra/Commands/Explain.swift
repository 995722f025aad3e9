import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Say what a run would do to one subject now (or at --as-of), and why.",
        discussion: """
            For each policy over the subject's table (drafts included; disabled ones listed as disabled): \
            whether the subject is due, or when it expires (the date the rule reads and where it comes from), \
            or why it never does (the exemption that holds, consent in force, no activity date, processed \
            already); the legal holds in force that stop the policy (gallra hold: id, reason, until), a \
            subject the rule expires being "held" while one is; the consent state under a consent policy; per data point the rows a live run at that \
            instant deletes, anonymizes or retains for the subject, and which foreign keys still use the \
            retained rows; and the subject's history in the audit trail. The answers come from the SQL a run \
            uses, in one READ ONLY snapshot; nothing is changed.

            The history needs the audit key (--audit-key-file, else audit.key_file, else the systemd \
            credential audit-key), as audit lookup does; without one, explain says so and leaves it out.

            A subject the table has no row for is explained by its history alone and exits 66.

            EXAMPLE:
              gallra explain --subject shop.customer:42 --as-of 2027-01-01
              gallra explain --subject shop.customer:email=ada@example.org --format json
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var subject: SubjectOption

    @Option(
        help: ArgumentHelp(
            "Explain at this instant instead of now, e.g. 2027-01-01T00:00:00Z (UTC unless an offset is given).",
            valueName: "timestamp"))
    var asOf: String?

    @Option(help: ArgumentHelp("The audit key file (overrides audit.key_file).", valueName: "path"))
    var auditKeyFile: String?

    @OptionGroup var output: FormatOptions

    func validate() throws {
        if let asOf, TimeText.parseInstant(asOf) == nil {
            throw ValidationError(
                "--as-of \(asOf): not a timestamp; write it as ISO 8601, e.g. 2027-01-01T00:00:00Z or 2027-01-01")
        }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let reference = try subject.reference()
            let digester = try (auditKeyFile ?? context.settings.auditKeyFile).map {
                try AuditKey.read(path: $0).digester
            }
            let connection = try await context.connectToCurrentSchema()
            let explanation: SubjectExplanation
            let invalid: [(name: String, reason: String)]
            let key: String
            do {
                // A key is explained as given, row or no row (the audit trail may hold an erased subject); a
                // COLUMN=VALUE is found first, in exactly one row.
                key = try await reference.key(on: connection)
                let runnable = try await RunnablePolicies.load(on: connection, names: [], includeDrafts: true)
                invalid = runnable.invalid
                let disabled = try await PolicyStore(connection: connection).loadAll().policies.filter {
                    $0.policy.state == .disabled && Self.names($0.policy.subject.table, reference.table)
                }.map { (name: $0.stored.name, version: $0.stored.version) }
                explanation = try await Engine(connection: connection, auditKey: nil, logger: context.logger).explain(
                    table: reference.table, key: key, policies: runnable.policies, disabled: disabled,
                    asOf: asOf.flatMap(TimeText.parseInstant).map(PostgresTimestamp.init), digester: digester)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            let report = ExplainReport(explanation)
            switch output.format {
            case .json: try JSONOutput.print(report)
            case .text: Swift.print(report.text)
            }
            for policy in invalid {
                StandardError.write("gallra: policy \(policy.name) is invalid and left out: \(policy.reason)\n")
            }
            if !explanation.exists {
                throw CommandFailure(
                    .noInput,
                    "\(reference.table) has no row with key \(key); the history above is all there is")
            }
        }
    }

    /// Whether a policy's subject table as written names `table` (an unqualified name is in `public`).
    static func names(_ written: QualifiedName, _ table: QualifiedName) -> Bool {
        written.name == table.name && (written.schema ?? "public") == table.schema
    }
}

/// What `gallra explain` prints.
struct ExplainReport: Encodable {
    var subject: String
    var asOf: String
    var exists: Bool
    var policies: [PolicyStanding]
    var subjectDigest: String?
    /// Nil without an audit key (`history_available` false).
    var history: [LookupReport.Record]?
    var historyAvailable: Bool

    enum CodingKeys: String, CodingKey {
        case subject, asOf, exists, policies, subjectDigest, history, historyAvailable
    }

    /// Every key is written, null when unknown: one shape whatever the subject's standing.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(subject, forKey: .subject)
        try container.encode(asOf, forKey: .asOf)
        try container.encode(exists, forKey: .exists)
        try container.encode(policies, forKey: .policies)
        try container.encode(subjectDigest, forKey: .subjectDigest)
        try container.encode(history, forKey: .history)
        try container.encode(historyAvailable, forKey: .historyAvailable)
    }

    init(_ explanation: SubjectExplanation) {
        subject = "\(explanation.table):\(explanation.key)"
        asOf = explanation.asOf
        exists = explanation.exists
        policies = explanation.policies
        subjectDigest = explanation.subjectDigest
        historyAvailable = explanation.history != nil
        history = explanation.history.map { entries in
            LookupReport(subject: subject, subjectDigest: explanation.subjectDigest ?? "", entries: entries).records
        }
    }

    var text: String {
        var lines = ["\(subject) at \(asOf)\(exists ? "" : ": no such row")"]
        for policy in policies {
            lines.append("")
            lines.append("policy \(policy.policy) v\(policy.version) (\(policy.state)): \(Self.verdict(policy))")
            guard policy.verdict != .disabled, policy.verdict != .noSubject else { continue }
            if let refused = policy.refused {
                lines.append("  but a live run refuses the policy now: \(refused)")
            }
            lines.append("  rule: \(policy.rule)")
            if let source = policy.dateSource {
                let date = policy.date.map(Self.day) ?? "none"
                var line = "  date: \(source) \(date)"
                if let expires = policy.expiresAt { line += " + period → \(Self.day(expires))" }
                if let rows = policy.relatedRows {
                    line += " (\(rows) related row\(rows == 1 ? "" : "s")"
                    line += (policy.nullDates ?? 0) > 0 ? ", \(policy.nullDates ?? 0) without a date)" : ")"
                }
                lines.append(line)
            }
            for exemption in policy.exemptions {
                lines.append("  exempt: except[\(exemption.index)] \(exemption.condition)")
            }
            for hold in policy.holds {
                lines.append("  held: \(Self.words(hold))")
            }
            if let consent = policy.consent {
                var line = "  consent (\(consent.source)): \(consent.state)"
                if let at = consent.at { line += " at \(at)" }
                if let rows = consent.rows {
                    line += ", \(rows) row\(rows == 1 ? "" : "s"), \(consent.inForce ?? 0) in force"
                }
                lines.append(line)
            }
            for step in policy.steps {
                var line =
                    "  data[\(step.dataPoint)] \(step.table): \(step.action) \(step.rows) row\(step.rows == 1 ? "" : "s")"
                if let anonymized = step.anonymized {
                    line =
                        "  data[\(step.dataPoint)] \(step.table): delete \(step.rows - anonymized) row\(step.rows - anonymized == 1 ? "" : "s"), anonymize \(anonymized) (still referenced)"
                }
                if step.retained > 0 { line += ", retain \(step.retained)" }
                lines.append(line)
                for holder in step.retainedBy {
                    lines.append(
                        "    still used by \(holder.table) (\(holder.columns.joined(separator: ", ")), "
                            + "foreign key \(holder.foreignKey)): \(holder.rows) row\(holder.rows == 1 ? "" : "s")")
                }
            }
            if policy.consentEvents > 0 {
                lines.append("  gallra.consent_event: delete \(policy.consentEvents) event(s)")
            }
        }
        lines.append("")
        if let history {
            if history.isEmpty {
                lines.append("history: no record in the audit trail (subject digest \(subjectDigest ?? ""))")
            } else {
                lines.append("history (subject digest \(subjectDigest ?? "")):")
                for record in history {
                    lines.append(
                        "  \(record.createdAt)  policy \(record.policy) v\(record.policyVersion)  run \(record.run)")
                    for count in record.counts {
                        lines.append("    \(count.table) \(count.action.rawValue) \(count.rows)")
                    }
                }
            }
        } else {
            lines.append("history: not shown, no audit key (give --audit-key-file or set audit.key_file)")
        }
        return lines.joined(separator: "\n")
    }

    /// The date of an RFC 3339 instant when it is midnight UTC, else the instant.
    static func day(_ instant: String) -> String {
        instant.hasSuffix("T00:00:00.000Z") ? String(instant.prefix(10)) : instant
    }

    /// A hold in words: `hold 7 "case 2026-114", until 2027-01-31` (or `until released`).
    static func words(_ hold: PolicyStanding.HoldMatch) -> String {
        "hold \(hold.id) \"\(hold.reason)\", " + (hold.until.map { "until \(day($0))" } ?? "until released")
            + (hold.policy == nil ? "" : ", for this policy only")
    }

    static func verdict(_ policy: PolicyStanding) -> String {
        switch policy.verdict {
        case .due: "due: a run now processes it"
        case .notYet: "not due yet; expires after \(policy.expiresAt.map(day) ?? "?")"
        case .exempt:
            "never while exempt: "
                + policy.exemptions.map { "except[\($0.index)] \($0.condition)" }.joined(separator: "; ")
        case .held: "held: not while a legal hold is in force (gallra hold list)"
        case .noDate: "never: no \(policy.dateSource ?? "date") to expire by"
        case .notRequested: "never without a due erasure request (gallra erase, gallra.request_erasure)"
        case .consentInForce: "never while consent is in force"
        case .processed: "already processed by this policy (gallra.processed)"
        case .noSubject: "no such row"
        case .disabled: "disabled: no run uses it"
        }
    }
}
