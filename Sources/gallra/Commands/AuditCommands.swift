import ArgumentParser
import Foundation
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify and read the audit trail: what gallra did, when, under which policy.",
        discussion: """
            Every batch of a live run appends one block to the audit trail (gallra.audit_block and \
            gallra.audit_subject): the run, the policy and its version, and for each subject a keyed digest \
            (never the subject's key) with the rows deleted, anonymized and retained per table. Blocks are \
            chained by SHA-256, so a changed, deleted, inserted or reordered record or block breaks the chain.
            """,
        subcommands: [VerifyAudit.self, ShowAudit.self, LookupAudit.self, AuditRuns.self]
    )
}

// MARK: - verify

struct VerifyAudit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute the audit trail's hash chain and report the first bad block.",
        discussion: """
            Reads the whole trail in one consistent snapshot (batches may go on appending meanwhile), a page \
            at a time, and recomputes every block: sequence numbers 1, 2, 3, ... without gaps, each block \
            chained to the one before, its subject records complete and in order, its hash, and the head row \
            (gallra.audit_head) naming the last block. Exits 0 when the trail is intact, 65 at the first \
            bad block, saying what was changed there.

            The chain proves the trail was not altered by anyone without database superuser rights. A \
            superuser could rewrite the trail and recompute every hash, so the head's hash is also logged to \
            the journal at the end of each run (GALLRA_AUDIT_HEAD): a copy outside the database. \
            --expect-head HASH checks that the chain ends at, or passes through, such a recorded hash.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(
        help: ArgumentHelp(
            "A block hash recorded elsewhere (e.g. in the journal): the chain must pass through it.",
            valueName: "hash"))
    var expectHead: String?

    @OptionGroup var output: FormatOptions

    func validate() throws {
        if let expectHead, expectHead.count != 64 || !expectHead.allSatisfy(\.isHexDigit) {
            throw ValidationError("--expect-head takes a block hash: 64 hexadecimal digits, as verify prints it.")
        }
    }

    func run() async throws {
        var intact = true
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            let result = try await AuditTrail.verify(on: connection, expectingHash: expectHead)
            await connection.close()
            switch output.format {
            case .json: try JSONOutput.print(VerifyReport(result))
            case .text: Swift.print(VerifyReport.text(result))
            }
            intact = result.isIntact
        }
        // The report above says what is wrong: only the status is left to give.
        if !intact { throw ExitCode(ExitStatus.dataError.rawValue) }
    }
}

struct VerifyReport: Encodable {
    var intact: Bool
    var blocks: Int
    var records: Int
    var head: AuditVerification.Head?
    var firstBreak: Break?
    var expectedHead: AuditVerification.ExpectedHash?

    struct Break: Encodable {
        var block: Int64
        var reason: AuditBreak.Reason
        var record: Int?
        var message: String
    }

    init(_ result: AuditVerification) {
        intact = result.isIntact
        blocks = result.blocks
        records = result.records
        head = result.head
        firstBreak = result.firstBreak.map {
            Break(block: $0.block, reason: $0.reason, record: $0.record, message: $0.detail)
        }
        expectedHead = result.expected
    }

    static func text(_ result: AuditVerification) -> String {
        let counts =
            "\(result.blocks) block\(result.blocks == 1 ? "" : "s"), \(result.records) subject record"
            + (result.records == 1 ? "" : "s")
        let head = result.head.map { "head \($0.sequence) \($0.hash)" } ?? "empty trail"
        if let broken = result.firstBreak {
            var lines = ["audit trail BROKEN at block \(broken.block): \(broken.detail)"]
            if let last = result.head {
                lines.append("intact before it: \(counts); last intact block \(last.sequence) \(last.hash)")
            }
            return lines.joined(separator: "\n")
        }
        var lines = ["audit trail intact: \(counts); \(head)"]
        if let expected = result.expected {
            if let found = expected.foundAt {
                lines.append("the chain passes through the expected hash at block \(found)")
            } else {
                lines = [
                    "audit trail BROKEN: no block has the expected hash \(expected.hash): the trail was rewritten "
                        + "or cut back since that hash was recorded",
                    "the chain as stored: \(counts); \(head)",
                ]
            }
        }
        return lines.joined(separator: "\n")
    }
}

// MARK: - show

struct ShowAudit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "List audit blocks: when, which run and policy, how many subjects and rows.",
        discussion: """
            One line per block (one batch), newest first: its sequence number, time, run, policy and version, \
            subjects, and rows deleted, anonymized and retained. --records adds each subject's digest and its \
            rows per table and action. Subjects appear as digests only; gallra audit lookup finds one subject. \
            The listing does not check the chain: gallra audit verify does.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(
        name: .customLong("run"), help: ArgumentHelp("Only the blocks of this run (its id, a UUID).", valueName: "id"))
    var runID: String?

    @Option(help: ArgumentHelp("Only the blocks of this policy.", valueName: "name"))
    var policy: String?

    @Option(
        help: ArgumentHelp(
            "Only blocks written at or after this time: 2026-03-01, '2026-03-01 14:00' (UTC) or ISO 8601.",
            valueName: "time"))
    var since: String?

    @Option(help: "At most this many blocks.")
    var limit = 50

    @Flag(help: "Oldest first (by sequence) instead of newest first.")
    var oldestFirst = false

    @Flag(help: "Also list each block's subject records (digests and rows per table).")
    var records = false

    @OptionGroup var output: FormatOptions

    func validate() throws {
        if let runID, UUID(uuidString: runID) == nil {
            throw ValidationError("--run takes a run id (a UUID, as gallra audit runs lists them), not \"\(runID)\".")
        }
        if let since, TimeText.parseInstant(since) == nil {
            throw ValidationError(
                "--since takes a time such as 2026-03-01, \"2026-03-01 14:00\" (UTC) or 2026-03-01T14:00:00+01:00, "
                    + "not \"\(since)\".")
        }
        guard limit > 0 else { throw ValidationError("--limit must be at least 1.") }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let filter = AuditBlockFilter(
                run: runID.flatMap { UUID(uuidString: $0) },
                policy: try policy.map { try PolicyNames.parse($0).rawValue },
                since: since.flatMap(TimeText.parseInstant).map { PostgresTimestamp($0) }, limit: limit,
                oldestFirst: oldestFirst)
            let connection = try await context.connectToCurrentSchema()
            let entries = try await AuditTrail.show(filter, includeRecords: records, on: connection)
            await connection.close()
            switch output.format {
            case .json:
                try JSONOutput.print(entries.map(ShowBlockReport.init))
            case .text:
                if entries.isEmpty {
                    let filtered = runID != nil || policy != nil || since != nil
                    Swift.print(filtered ? "no audit block matches" : "no audit blocks yet")
                    return
                }
                Swift.print(records ? Self.textWithRecords(entries) : Self.table(entries).render())
            }
        }
    }

    static func table(_ entries: [AuditBlockEntry]) -> TextTable {
        let table = TextTable(header: [
            "BLOCK", "TIME", "RUN", "POLICY", "SUBJECTS", "DELETED", "ANONYMIZED", "RETAINED",
        ])
        for entry in entries {
            table.add([
                String(entry.block.sequence), TimeText.readable(unixMicroseconds: entry.block.createdAtMicroseconds),
                entry.block.run,
                "\(entry.block.policy) v\(entry.block.policyVersion)", String(entry.block.subjects),
                String(entry.deleted), String(entry.anonymized), String(entry.retained),
            ])
        }
        return table
    }

    static func textWithRecords(_ entries: [AuditBlockEntry]) -> String {
        entries.map { entry in
            let block = entry.block
            var text =
                "block \(block.sequence)  \(TimeText.readable(unixMicroseconds: block.createdAtMicroseconds))  run \(block.run)  "
                + "\(block.policy) v\(block.policyVersion)  \(block.subjects) subject\(block.subjects == 1 ? "" : "s")"
                + "  deleted \(entry.deleted), anonymized \(entry.anonymized), retained \(entry.retained)"
            for record in entry.records ?? [] {
                text += "\n  \(record.subjectDigest)  " + AuditText.counts(record.counts)
            }
            return text
        }.joined(separator: "\n")
    }
}

struct ShowBlockReport: Encodable {
    struct Record: Encodable {
        var subjectDigest: String
        var counts: [AuditCount]
    }

    var sequence: Int64
    var createdAt: String
    var run: String
    var policy: String
    var policyVersion: Int
    var subjects: Int
    var deleted: Int
    var anonymized: Int
    var retained: Int
    var recordsHash: String
    var previousHash: String
    var hash: String
    var records: [Record]?

    init(_ entry: AuditBlockEntry) {
        let block = entry.block
        sequence = block.sequence
        createdAt = TimeText.rfc3339(unixMicroseconds: block.createdAtMicroseconds)
        run = block.run
        policy = block.policy
        policyVersion = block.policyVersion
        subjects = block.subjects
        deleted = entry.deleted
        anonymized = entry.anonymized
        retained = entry.retained
        recordsHash = block.recordsHash
        previousHash = block.previousHash
        hash = block.hash
        records = entry.records?.map { Record(subjectDigest: $0.subjectDigest, counts: $0.counts) }
    }
}

// MARK: - lookup

struct LookupAudit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookup",
        abstract: "Say when, by which policy and run, and how a subject was processed.",
        discussion: """
            The trail holds subjects only as digests: HMAC-SHA-256 of TABLE:KEY under the audit key. lookup \
            computes the digest of the subject given, exactly as a run does, and lists every record of it: \
            the block and its time, the run, the policy and version, and the rows deleted, anonymized and \
            retained per table. TABLE is schema-qualified (shop.customer; quote mixed-case names as in SQL: \
            '"Shop"."Customer":7'); KEY is the key's text form. The key of the subject is not logged, and the \
            audit key never appears in any output.

            The audit key is read from --audit-key-file, else the setting audit.key_file \
            ($GALLRA_AUDIT_KEY_FILE), else $CREDENTIALS_DIRECTORY/audit-key under systemd. Without one, lookup \
            exits 78. A subject with no record prints "no record of ..." and exits 0: that is an answer, not \
            a failure.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The subject: its table, a colon, and its key.", valueName: "table:key"))
    var subject: String

    @Option(help: ArgumentHelp("The audit key file (overrides audit.key_file).", valueName: "path"))
    var auditKeyFile: String?

    @OptionGroup var output: FormatOptions

    func validate() throws {
        _ = try SubjectReference(parsing: subject)
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let reference = try SubjectReference(parsing: subject)
            guard let keyPath = auditKeyFile ?? context.settings.auditKeyFile else {
                throw CommandFailure(
                    .configuration,
                    "no audit key: lookup needs the key the trail's digests were made with. Give "
                        + "--audit-key-file PATH, set audit.key_file in the configuration (or GALLRA_AUDIT_KEY_FILE), "
                        + "or run it where systemd passes the audit-key credential ($CREDENTIALS_DIRECTORY).")
            }
            let key = try AuditKey.read(path: keyPath)
            let digest = key.digester.digest(table: reference.table.description, key: reference.key)
            let connection = try await context.connectToCurrentSchema()
            let entries = try await AuditTrail.lookup(digest: digest, on: connection)
            await connection.close()
            let report = LookupReport(subject: reference.description, subjectDigest: digest, entries: entries)
            switch output.format {
            case .json: try JSONOutput.print(report)
            case .text: Swift.print(report.text)
            }
        }
    }
}

/// `TABLE:KEY` from the command line: the table in SQL identifier syntax, schema-qualified.
struct SubjectReference: CustomStringConvertible {
    var table: QualifiedName
    var key: String

    /// Splits at the first colon outside double quotes. Errors name the table part only, never the key.
    init(parsing text: String) throws {
        var inQuotes = false
        var colon: String.Index?
        for index in text.indices {
            if text[index] == "\"" { inQuotes.toggle() }
            if text[index] == ":", !inQuotes {
                colon = index
                break
            }
        }
        guard let colon else {
            throw ValidationError("--subject takes TABLE:KEY, e.g. shop.customer:123 (a colon between them).")
        }
        let tableText = String(text[..<colon])
        do {
            table = try QualifiedName(parsing: tableText)
        } catch {
            throw ValidationError("--subject: \(error.message)")
        }
        guard table.schema != nil else {
            throw ValidationError(
                "--subject: name the table with its schema, as the policy's plan does: e.g. public.\(table.description):KEY"
            )
        }
        key = String(text[text.index(after: colon)...])
        guard !key.isEmpty else { throw ValidationError("--subject: the key after the colon is empty.") }
    }

    var description: String { "\(table.description):\(key)" }
}

struct LookupReport: Encodable {
    struct Record: Encodable {
        var block: Int64
        var createdAt: String
        var run: String
        var policy: String
        var policyVersion: Int
        var counts: [AuditCount]
    }

    var subject: String
    var subjectDigest: String
    var found: Bool
    var records: [Record]
    private var entries: [AuditSubjectEntry]

    enum CodingKeys: String, CodingKey {
        case subject, subjectDigest, found, records
    }

    init(subject: String, subjectDigest: String, entries: [AuditSubjectEntry]) {
        self.entries = entries
        self.subject = subject
        self.subjectDigest = subjectDigest
        found = !entries.isEmpty
        records = entries.map {
            Record(
                block: $0.block, createdAt: TimeText.rfc3339(unixMicroseconds: $0.createdAtMicroseconds), run: $0.run,
                policy: $0.policy,
                policyVersion: $0.policyVersion, counts: $0.counts)
        }
    }

    var text: String {
        guard !entries.isEmpty else {
            return "no record of \(subject) in the audit trail (subject digest \(subjectDigest); "
                + "a digest made with another audit key matches nothing)"
        }
        var lines = [
            "\(subject) was processed \(entries.count == 1 ? "once" : "\(entries.count) times") "
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
        return lines.joined(separator: "\n")
    }
}

// MARK: - runs

struct AuditRuns: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List live runs (gallra.run): when, why, how they ended.",
        discussion: "Newest first. Their ids are the --run of gallra audit show and GALLRA_RUN_ID in the journal."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "At most this many runs.")
    var limit = 20

    @OptionGroup var output: FormatOptions

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1.") }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            let runs = try await AuditTrail.runs(limit: limit, on: connection)
            await connection.close()
            switch output.format {
            case .json:
                let objects: [[String: Any]] = runs.map { run in
                    [
                        "id": run.id, "mode": run.mode, "trigger": run.trigger, "outcome": run.outcome,
                        "as_of": TimeText.rfc3339(unixMicroseconds: run.asOfMicroseconds),
                        "started_at": TimeText.rfc3339(unixMicroseconds: run.startedAtMicroseconds),
                        "finished_at": run.finishedAtMicroseconds.map { TimeText.rfc3339(unixMicroseconds: $0) }
                            ?? NSNull(),
                        "counts": (try? JSONSerialization.jsonObject(with: Data(run.countsJSON.utf8))) ?? NSNull(),
                    ]
                }
                let data = try JSONSerialization.data(
                    withJSONObject: objects, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                Swift.print(String(decoding: data, as: UTF8.self))
            case .text:
                if runs.isEmpty {
                    Swift.print("no live runs yet")
                    return
                }
                let table = TextTable(header: ["RUN", "MODE", "TRIGGER", "STARTED", "FINISHED", "OUTCOME"])
                for run in runs {
                    table.add([
                        run.id, run.mode, run.trigger, TimeText.readable(unixMicroseconds: run.startedAtMicroseconds),
                        run.finishedAtMicroseconds.map { TimeText.readable(unixMicroseconds: $0) } ?? "-", run.outcome,
                    ])
                }
                Swift.print(table.render())
            }
        }
    }
}

// MARK: - Formatting

enum AuditText {
    /// `shop.customer deleted 1, shop.order anonymized 4`.
    static func counts(_ counts: [AuditCount]) -> String {
        counts.isEmpty
            ? "no rows" : counts.map { "\($0.table) \($0.action.rawValue) \($0.rows)" }.joined(separator: ", ")
    }
}
