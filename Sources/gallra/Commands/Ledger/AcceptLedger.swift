import ArgumentParser
import GallraCore
import GallraEngine
import Logging

struct AcceptLedger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accept",
        abstract: "Take a restored database as it is: the erasures it lost are not applied again.",
        discussion: """
            When the database is older than its ledger (restored from a backup) or has diverged from it, the \
            service holds live runs and erasure requests back. gallra ledger replay applies the lost erasures \
            again; accept instead records the operator's decision to go on without them: a restore line \
            (resolution accept, the fork point, the ledger's head, the OS user) is appended, the lost blocks stay \
            in the ledger as evidence, and the ledger continues with the database's blocks after the fork point. \
            The service sees the line at its next schedule tick or SIGHUP and resumes. Exits 0 when recorded, \
            75 when there is nothing to accept (the database is not behind its ledger).
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            try await context.withCurrentSchema { connection in
                let path = try await context.configuredLedgerPath(on: connection)
                let fork = try await LedgerComparison.forkPoint(
                    of: try LedgerFile.read(path: path), on: connection, path: path)
                guard fork.isRestore else {
                    throw CommandFailure(
                        .temporaryFailure,
                        "nothing to accept: the database holds the ledger's head, \(fork.ledgerHead) (ledger \(path))")
                }
                let restore = try LedgerFile.appendRestore(
                    to: path, resolution: .accept, fork: fork, by: Export.operatingSystemUser())
                let appended = try await LedgerFile.catchUp(path: path, on: connection)
                let message =
                    "restore accepted: the ledger continues from \(fork.forkPoint); \(fork.missingBlocks.count) lost "
                    + "block(s) with \(fork.missingSubjects) subject record(s) stay in it as evidence"
                context.logger.notice(
                    "\(message)",
                    metadata: JournalEvent.restoreResolved.metadata([
                        "GALLRA_LEDGER": "\(path)", "GALLRA_FORK_POINT": "\(fork.forkPoint.sequence)",
                        "GALLRA_RESOLUTION": "accept",
                    ]))
                switch output.format {
                case .json:
                    try JSONOutput.print(
                        AcceptReport(
                            ledger: path, forkPoint: fork.forkPoint, ledgerHead: fork.ledgerHead,
                            lostBlocks: fork.missingBlocks.count, lostSubjects: fork.missingSubjects,
                            by: restore.by, at: restore.at, appended: appended))
                case .text:
                    Swift.print(
                        "accepted the restored database: ledger \(path) continues from \(fork.forkPoint); "
                            + "\(fork.missingBlocks.count) block(s) with \(fork.missingSubjects) subject record(s) "
                            + "after it were not applied again and stay in the ledger as evidence; "
                            + "\(appended) block(s) of the database appended after the restore line")
                }
            }
        }
    }
}

/// `gallra ledger accept --format json`.
struct AcceptReport: Encodable {
    var ledger: String
    var forkPoint: LedgerPosition
    var ledgerHead: LedgerPosition
    var lostBlocks: Int
    var lostSubjects: Int
    var by: String
    var at: String
    var appended: Int
}
