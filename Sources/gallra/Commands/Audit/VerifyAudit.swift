import ArgumentParser
import GallraCore
import GallraEngine
import GallraPostgres

struct VerifyAudit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute the audit trail's hash chain and report the first bad block.",
        discussion: """
            Reads the whole trail in one consistent snapshot (batches may go on appending meanwhile), a page \
            at a time, and recomputes every block: sequence numbers 1, 2, 3, ... without gaps, each block \
            chained to the one before, its subject records complete and in order, its hash, and the head row \
            (gallra.audit_head) naming the last block. Exits 0 when the trail is intact, 65 at the first \
            bad block, saying what was changed there. The records of register extracts (gallra.audit_export) \
            and of holds and corrections (gallra.audit_event) are chains of their own, checked the same way.

            The chain proves the trail was not altered by anyone without database superuser rights. A \
            superuser could rewrite the trail and recompute every hash, so the head's hash is also logged to \
            the journal at the end of each run (GALLRA_AUDIT_HEAD): a copy outside the database. \
            --expect-head HASH checks that the chain ends at, or passes through, such a recorded hash; the first \
            12 or more of its hexadecimal digits do when only one block's hash starts with them (exit 64 otherwise).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(
        help: ArgumentHelp(
            "A block hash recorded elsewhere (e.g. in the journal), or its first 12+ digits: the chain must pass through it.",
            valueName: "hash"))
    var expectHead: String?

    @OptionGroup var output: FormatOptions

    func validate() throws {
        try ExpectHeadOption.validate(expectHead, source: "verify prints it")
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

/// `gallra audit verify --format json`: the chain checked, and its first break.
struct VerifyReport: Encodable {
    var intact: Bool
    var blocks: Int
    var records: Int
    var head: AuditVerification.Head?
    var firstBreak: Break?
    var expectedHead: AuditVerification.ExpectedHash?
    var exports: Int
    var exportBreak: String?
    var events: Int
    var eventBreak: String?

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
        exports = result.exports
        exportBreak = result.exportBreak
        events = result.events
        eventBreak = result.eventBreak
    }

    static func text(_ result: AuditVerification) -> String {
        let counts =
            "\(result.blocks) block\(result.blocks == 1 ? "" : "s"), \(result.records) subject record"
            + (result.records == 1 ? "" : "s")
        let head = result.head.map { "head \($0.sequence) \($0.hash)" } ?? "empty trail"
        let exports = "\(result.exports) extract record\(result.exports == 1 ? "" : "s")"
        let events = "\(result.events) event record\(result.events == 1 ? "" : "s") (holds, corrections)"
        if let broken = result.exportBreak, result.firstBreak == nil {
            return "audit trail BROKEN: \(broken)\nblocks intact: \(counts); \(head); \(exports) intact before it"
        }
        if let broken = result.eventBreak, result.firstBreak == nil {
            return "audit trail BROKEN: \(broken)\nblocks intact: \(counts); \(head); \(events) intact before it"
        }
        if let broken = result.firstBreak {
            var lines = ["audit trail BROKEN at block \(broken.block): \(broken.detail)"]
            if let last = result.head {
                lines.append("intact before it: \(counts); last intact block \(last.sequence) \(last.hash)")
            }
            return lines.joined(separator: "\n")
        }
        var lines = [
            "audit trail intact: \(counts); \(head)" + (result.exports > 0 ? "; \(exports)" : "")
                + (result.events > 0 ? "; \(events)" : "")
        ]
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
