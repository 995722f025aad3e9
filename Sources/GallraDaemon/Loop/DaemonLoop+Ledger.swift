// The erasure ledger around the service's live work: caught up after it, and live work held back while the
// database is older than its ledger (restored from a backup) until an operator resolves it.
import GallraEngine
import GallraPostgres
import Logging

extension DaemonLoop {
    var ledgerKeeper: LedgerKeeper { LedgerKeeper(location: configuration.ledger, logger: logger) }

    /// Whether live work must wait: looks at the ledger and the database's audit head. A restore found is logged
    /// once (`restoreDetected`), one resolved once (`restoreResolved`). A ledger that cannot be read does not hold
    /// work back: it is logged, and the catch-up after the work says the rest.
    func holdsOff(on connection: PostgresConnection) async throws -> Bool {
        let fork: LedgerFork?
        do {
            fork = try await LedgerKeeper(location: configuration.ledger, logger: heldOff == nil ? logger : quiet)
                .unresolvedRestore(on: connection)
        } catch let error as LedgerError {
            if error.kind == .otherDatabase {
                logger.critical("\(error.description)", metadata: JournalEvent.ledgerFailed.metadata())
                heldOff = nil
                return true
            }
            logger.error("\(error.description)", metadata: JournalEvent.ledgerFailed.metadata())
            return false
        }
        if let fork {
            if let known = heldOff, known != fork {
                // Another state of the same restore (the database ran on, or the ledger moved): said again.
                _ = try await ledgerKeeper.unresolvedRestore(on: connection)
            }
            heldOff = fork
            setStatus(
                "holding off: the database is older than its erasure ledger (restored?); run gallra ledger replay "
                    + "--dry-run, then gallra ledger replay or gallra ledger accept")
            return true
        }
        if let resolved = heldOff {
            heldOff = nil
            let message =
                "the restore is resolved (the ledger continues from \(resolved.forkPoint)); live runs and erasure "
                + "requests resume"
            logger.notice(
                "\(message)",
                metadata: JournalEvent.restoreResolved.metadata(["GALLRA_FORK_POINT": "\(resolved.forkPoint.sequence)"])
            )
        }
        return false
    }

    /// A logger that says nothing: the re-checks of a restore already reported.
    private var quiet: Logger {
        var quiet = logger
        quiet.logLevel = .critical
        return quiet
    }

    /// Appends the blocks the work just wrote to the ledger; a failure is logged (`ledgerFailed`, critical) and
    /// shown in the status, and the next catch-up tries again.
    func catchUpLedger(on connection: PostgresConnection) async {
        guard await connection.isOpen else { return }
        if await ledgerKeeper.catchUp(on: connection, keyCheck: configuration.auditKey.digester.keyCheck) != nil {
            setStatus("error: the erasure ledger cannot be written (see the journal); the work is committed")
        }
    }
}
