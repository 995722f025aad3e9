import ArgumentParser
import GallraCore
import GallraEngine

struct VerifyLedger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a ledger file: every line, every block's hashes, the chain, and the head the journal logged.",
        discussion: """
            Reads FILE (the configured ledger when omitted) and checks: every line complete and what gallra \
            writes (a cut last line, an unknown kind or a bad field is named by its line number); each block's \
            records hash and hash, recomputed as gallra audit verify does; sequence numbers without gaps and each \
            block chained to the one before; each restore line naming the ledger's head and a block of its chain. \
            A ledger cut exactly at a line boundary still reads as a whole: --expect-head HASH (the journal's \
            GALLRA_AUDIT_HEAD, or its first 12+ digits) checks that the ledger holds that block. Needs no database \
            unless FILE is omitted. Exits 0 when intact, 65 otherwise.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The ledger file (default: the configured ledger).", valueName: "file"))
    var file: String?

    @Option(
        help: ArgumentHelp(
            "A block hash recorded elsewhere (the journal's GALLRA_AUDIT_HEAD), or its first 12+ digits: the ledger must hold it.",
            valueName: "hash"))
    var expectHead: String?

    @OptionGroup var output: FormatOptions

    func validate() throws {
        try ExpectHeadOption.validate(expectHead, source: "the journal logs it")
    }

    func run() async throws {
        var intact = true
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let path: String
            if let file {
                path = file
            } else {
                path = try await context.withCurrentSchema { try await context.configuredLedgerPath(on: $0) }
            }
            let result = try LedgerFile.verify(path: path, expectingHash: expectHead)
            switch output.format {
            case .json: try JSONOutput.print(LedgerVerifyReport(result, path: path))
            case .text: Swift.print(LedgerVerifyReport.text(result, path: path))
            }
            intact = result.isIntact
        }
        if !intact { throw ExitCode(ExitStatus.dataError.rawValue) }
    }
}

/// `gallra ledger verify --format json`.
struct LedgerVerifyReport: Encodable {
    var ledger: String
    var intact: Bool
    var blocks: Int
    var records: Int
    var restores: Int
    var startsAfter: LedgerPosition?
    var head: LedgerPosition?
    var problem: Problem?
    var expectedHead: LedgerVerification.ExpectedHash?

    struct Problem: Encodable {
        var line: Int?
        var message: String
    }

    init(_ result: LedgerVerification, path: String) {
        ledger = path
        intact = result.isIntact
        blocks = result.blocks
        records = result.records
        restores = result.restores
        startsAfter = result.startsAfter
        head = result.head
        problem = result.problem.map { Problem(line: $0.line, message: $0.message) }
        expectedHead = result.expected
    }

    static func text(_ result: LedgerVerification, path: String) -> String {
        let counts =
            "\(result.blocks) block\(result.blocks == 1 ? "" : "s"), \(result.records) subject record"
            + (result.records == 1 ? "" : "s")
            + (result.restores > 0 ? ", \(result.restores) restore line\(result.restores == 1 ? "" : "s")" : "")
        let head = result.head.map { "head \($0.sequence) \($0.hash)" } ?? "no block"
        let start =
            result.startsAfter.map { "; starts after block \($0.sequence) (previous hash \($0.hash.prefix(12)))" } ?? ""
        if let problem = result.problem {
            return "ledger \(path) BROKEN at line \(problem.line.map(String.init) ?? "?"): \(problem.message)\n"
                + "intact before it: \(counts); \(head)"
        }
        var lines = ["ledger \(path) intact: \(counts); \(head)\(start)"]
        if let expected = result.expected {
            if let found = expected.foundAt {
                lines.append("the ledger holds the expected hash at block \(found)")
            } else {
                lines = [
                    "ledger \(path) BROKEN: no block has the expected hash \(expected.hash): the ledger was cut "
                        + "back (or rewritten) since that hash was logged",
                    "the ledger as read: \(counts); \(head)",
                ]
            }
        }
        return lines.joined(separator: "\n")
    }
}
