import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraEngine
import GallraPolicy
import GallraPostgres

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

/// One block of `gallra audit show --format json`.
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

/// Audit counts as text.
enum AuditText {
    /// `shop.customer deleted 1, shop.order anonymized 4`.
    static func counts(_ counts: [AuditCount]) -> String {
        counts.isEmpty
            ? "no rows" : counts.map { "\($0.table) \($0.action.rawValue) \($0.rows)" }.joined(separator: ", ")
    }
}
