import GallraCore
import GallraEngine
import GallraPostgres
import Logging

extension CommandContext {
    /// The ledger around this command's live work; says once, as a notice, when there is none.
    func ledgerKeeper() -> LedgerKeeper {
        if settings.ledger.isNone { logger.notice("\(LedgerLocation.noLedgerNotice)") }
        return LedgerKeeper(location: settings.ledger, logger: logger)
    }
}

extension LedgerKeeper {
    /// Refuses live work (exit 75) while the database is older than its ledger.
    func refuseDuringRestore(on connection: PostgresConnection) async throws {
        guard let fork = try await unresolvedRestore(on: connection) else { return }
        let path = try await location.path(on: connection) ?? ""
        throw CommandFailure(.temporaryFailure, LedgerKeeper.restoreMessage(fork, path: path))
    }
}

extension CommandFailure {
    /// The ledger could not be written after committed work: exit 74 (or the error's own status), saying that the
    /// work is done and audited.
    static func ledger(_ error: LedgerError) -> CommandFailure {
        CommandFailure(
            error.exitStatus,
            "\(error.description)\nThe work above is committed and in the audit trail; the erasure ledger is behind "
                + "it until it can be written: fix that, and the next run (or gallra ledger export) catches it up.")
    }
}
