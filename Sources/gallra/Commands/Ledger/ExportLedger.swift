import ArgumentParser
import GallraCore
import GallraEngine
import GallraPostgres

struct ExportLedger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a ledger from the audit trail (an installation that had none, or a copy to keep elsewhere).",
        discussion: """
            Writes the header and every audit block with its subject records and subject table, read in one \
            consistent snapshot and checked against the chain, to standard output or to --out FILE (created; an \
            existing file is refused, so the ledger the service keeps is never overwritten). With --since, only \
            the blocks written at or after that time: the first one's previous hash is then not the start of the \
            trail, and gallra ledger verify says where the ledger starts. To start the service's ledger on an \
            existing installation, export to its path (ledger.path) before the service's first run with it.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(
        help: ArgumentHelp(
            "Only blocks written at or after this time (UTC unless an offset is given).", valueName: "time"))
    var since: String?

    @Option(help: ArgumentHelp("Write to this new file instead of standard output.", valueName: "file"))
    var out: String?

    func validate() throws {
        if let since, TimeText.parseInstant(since) == nil {
            throw ValidationError(
                "--since takes a time such as 2026-03-01, \"2026-03-01 14:00\" (UTC) or 2026-03-01T14:00:00+01:00, "
                    + "not \"\(since)\".")
        }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let instant = since.flatMap(TimeText.parseInstant).map { PostgresTimestamp($0) }
            if let out, LedgerFile.exists(path: out) {
                throw CommandFailure(
                    .usage, "--out \(out): the file exists; name a new file (an export never overwrites a ledger)")
            }
            let out = self.out
            let blocks = try await context.withCurrentSchema { connection in
                try await LedgerFile.export(since: instant, on: connection) { lines in
                    if let out {
                        try LedgerFile.append(lines, to: out)
                    } else {
                        var text = ""
                        for line in lines { text += line.jsonText + "\n" }
                        Swift.print(text, terminator: "")
                    }
                }
            }
            if let out {
                StandardError.write("gallra: wrote \(blocks) audit block(s) to \(out)\n")
            }
        }
    }
}
