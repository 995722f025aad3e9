import ArgumentParser
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct Erase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Erase one subject now, on request (GDPR Art. 17), or queue the request for the service.",
        discussion: """
            Records an erasure request for the subject, as the shop's call of gallra.request_erasure does, and \
            processes it at once under the on-request policies of its table (expires: on_request): what can go \
            is deleted and what must stay is anonymized, in the same batches, locks and audit trail as a \
            retention run (trigger erase). Prints per table the rows deleted, anonymized and kept (retained: \
            still used by rows that stay), the run and the request's id. Afterwards the queue holds the \
            subject only as its audit digest.

            The request is refused, and recorded as refused with why, when a legal hold is in force on the \
            subject (the hold is named), an exemption of an on-request policy keeps it (named), the table has no \
            active on-request policy, or no row has the key. A subject row the shop holds locked leaves the \
            request pending: the service retries it. If another gallra is erasing the same subject, this one \
            waits and reports that outcome.

            --queue only records the request and prints when it becomes due; the service processes it. --after \
            DURATION (e.g. 24h, 7 days) sets an undo window and implies --queue: gallra requests cancel ID undoes \
            the request until then.

            --dry-run records nothing and changes nothing: it shows, per on-request policy, the rows the live \
            command would delete, anonymize and retain for this subject now, or the refusal it would meet. It \
            needs no audit key; the live command does (audit.key_file), as a live run does.

            EXIT STATUS: 0 done (or queued); 66 no such subject; 75 refused by a legal hold or an exemption, or \
            still pending because the shop holds the subject's rows; 78 no on-request policy for the table, or no \
            audit key; 64 bad arguments.

            EXAMPLES:
              gallra erase --subject shop.customer:1234 --reason "ticket 5521"
              gallra erase --subject shop.customer:email=ada@example.org --dry-run
              gallra erase --subject shop.customer:1234 --after 24h --reason "ticket 5521"
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var subject: SubjectOption

    @Option(
        help: ArgumentHelp(
            "Why, for people: a ticket number, at most 1024 bytes (not the customer's data).", valueName: "text"))
    var reason: String?

    @Flag(help: "Show what the erasure would do, or the refusal it would meet; record and change nothing.")
    var dryRun = false

    @Flag(help: "Only record the request; the service processes it.")
    var queue = false

    @Option(
        help: ArgumentHelp(
            "An undo window: the request becomes due this long from now, e.g. 24h or 7 days (implies --queue).",
            valueName: "duration"))
    var after: String?

    @OptionGroup var output: FormatOptions

    func validate() throws {
        if let after {
            do {
                _ = try RetentionPeriod(parsing: after)
            } catch {
                throw ValidationError("--after: \(error.message)")
            }
        }
        if dryRun, queue || after != nil {
            throw ValidationError(
                "--dry-run records nothing, so it does not go with --queue or --after; leave one out.")
        }
        if let reason {
            if reason.allSatisfy(\.isWhitespace) {
                throw ValidationError("--reason is empty; leave it out, or give a ticket number.")
            }
            if reason.utf8.count > 1024 {
                throw ValidationError("--reason is \(reason.utf8.count) bytes, more than 1024; keep it short.")
            }
        }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let reference = try subject.reference()
            let auditKey = dryRun ? nil : try context.auditKey()
            try await context.withCurrentSchema { connection in
                if let auditKey {
                    try await erase(reference, auditKey: auditKey, on: connection, context: context)
                } else {
                    try await preview(reference, on: connection, context: context)
                }
            }
        }
    }

    private func preview(
        _ reference: SubjectReference, on connection: PostgresConnection, context: CommandContext
    ) async throws {
        let found = try await reference.find(on: connection)
        let engine = Engine(connection: connection, auditKey: nil, logger: context.logger)
        let preview = try await engine.previewErasure(table: reference.table.description, key: found.key)
        switch output.format {
        case .json: try JSONOutput.print(preview)
        case .text: Swift.print(ErasureText.preview(preview, subject: found.reference))
        }
        if let kind = preview.refusalKind {
            throw CommandFailure(kind.exitStatus, "the erasure would be refused: \(preview.refusal ?? "")")
        }
    }

    private func erase(
        _ reference: SubjectReference, auditKey: AuditKey, on connection: PostgresConnection, context: CommandContext
    ) async throws {
        let subjectKey = try await reference.key(on: connection)
        let window = try after.map { try RetentionPeriod(parsing: $0) }
        let id = try await ErasureQueue.request(
            table: reference.table.description, key: subjectKey, reason: reason, after: window, on: connection)
        if queue || window != nil {
            guard let request = try await ErasureQueue.read(id, on: connection) else {
                throw CommandFailure(.software, "erasure request \(id) vanished after it was recorded")
            }
            switch output.format {
            case .json: try JSONOutput.print(RequestReport(request))
            case .text:
                Swift.print(
                    "erasure request \(id) recorded for \(reference.table); due \(ErasureText.time(request.notBefore)); "
                        + "the service processes it then (gallra requests cancel \(id) undoes it until it is processed)"
                )
            }
            return
        }
        let keeper = context.ledgerKeeper()
        try await keeper.refuseDuringRestore(on: connection)
        let engine = Engine(connection: connection, auditKey: auditKey, logger: context.logger)
        let options = RunOptions(
            mode: .live, trigger: "erase", gallraVersion: BuildInfo.version, connect: { try await context.connect() })
        guard let outcome = try await engine.processErasureRequests(.ids([id]), options: options).first else {
            throw CommandFailure(.software, "erasure request \(id) vanished after it was recorded")
        }
        let ledgerFailure = await keeper.catchUp(on: connection, keyCheck: auditKey.digester.keyCheck)
        switch output.format {
        case .json: try JSONOutput.print(outcome)
        case .text: Swift.print(ErasureText.outcome(outcome))
        }
        if let ledgerFailure { throw CommandFailure.ledger(ledgerFailure) }
        switch outcome.status {
        case .done: return
        case .refused:
            let kind = outcome.refusalKind ?? .noPolicy
            throw CommandFailure(kind.exitStatus, "erasure request \(id) refused: \(outcome.refusal ?? "")")
        case .pending:
            throw CommandFailure(
                .temporaryFailure,
                "erasure request \(id) is still pending: the shop holds a row of the subject; the service tries it again (gallra requests show \(id))"
            )
        case .cancelled:
            throw CommandFailure(.temporaryFailure, "erasure request \(id) was cancelled before it was processed")
        }
    }
}

/// The text `gallra erase` and `gallra requests` print.
enum ErasureText {
    /// `2026-12-05 05:43:21 UTC`: whole seconds (truncated), so that a table's columns line up; `--format json`
    /// gives the microseconds.
    static func time(_ timestamp: PostgresTimestamp) -> String {
        timestamp.isInfinite ? timestamp.description : timestamp.secondsText + " UTC"
    }

    /// Rows per table: deleted, anonymized, retained.
    static func countsTable(_ counts: [ErasureOutcome.Count]) -> String {
        var tables: [String: (deleted: Int, anonymized: Int, retained: Int)] = [:]
        for count in counts {
            var entry = tables[count.table] ?? (0, 0, 0)
            switch count.action {
            case "delete": entry.deleted += count.rows
            case "anonymize": entry.anonymized += count.rows
            default: entry.retained += count.rows
            }
            tables[count.table] = entry
        }
        let table = TextTable(header: ["TABLE", "DELETED", "ANONYMIZED", "RETAINED"])
        for (name, entry) in tables.sorted(by: { $0.key < $1.key }) {
            table.add([name, "\(entry.deleted)", "\(entry.anonymized)", "\(entry.retained)"])
        }
        return table.render()
    }

    static func outcome(_ outcome: ErasureOutcome) -> String {
        var lines = ["erasure request \(outcome.id) (\(outcome.subjectTable)): \(outcome.status.rawValue)"]
        switch outcome.status {
        case .done:
            if let run = outcome.run { lines.append("run: \(run)") }
            lines.append(outcome.counts.isEmpty ? "no rows changed" : countsTable(outcome.counts))
        case .refused:
            lines.append("refused: \(outcome.refusal ?? "")")
        case .pending:
            if let notBefore = outcome.notBefore {
                lines.append("due at \(notBefore)")
            } else {
                lines.append("attempts: \(outcome.attempts); the shop held a row of the subject, tried again later")
            }
        case .cancelled:
            break
        }
        lines.append("subject digest: \(outcome.subjectDigest)")
        return lines.joined(separator: "\n")
    }

    static func preview(_ preview: ErasurePreview, subject: String) -> String {
        var lines = ["dry run: erasing \(subject) now (nothing changed, no request recorded)"]
        if let refusal = preview.refusal {
            lines.append("would be refused: \(refusal)")
            return lines.joined(separator: "\n")
        }
        for policy in preview.policies {
            lines.append("")
            lines.append("policy \(policy.policy) v\(policy.version): \(policy.verdict.rawValue)")
            let table = TextTable(header: ["DATA POINT", "TABLE", "WOULD DELETE", "WOULD ANONYMIZE", "RETAINED"])
            for step in policy.steps {
                // A delete-or-anonymize's rows are both: those still referenced are anonymized, the others deleted.
                let anonymized = step.action == "anonymize" ? step.rows : step.anonymized ?? 0
                table.add([
                    "data[\(step.dataPoint)]", step.table, "\(step.rows - anonymized)", "\(anonymized)",
                    "\(step.retained)",
                ])
            }
            lines.append(table.render())
            if policy.consentEvents > 0 { lines.append("consent events removed: \(policy.consentEvents)") }
            if let refused = policy.refused {
                lines.append("the policy's limits would refuse it: \(refused)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
