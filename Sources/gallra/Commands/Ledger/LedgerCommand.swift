import ArgumentParser
import GallraCore
import GallraEngine
import GallraPostgres

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "The erasure ledger: a copy of the audit trail outside the database, to survive a backup restore.",
        discussion: """
            After every live run, erasure request and gallra erase, gallra appends the audit blocks it wrote, with \
            their subject digests, to the ledger file (ledger.path, or $STATE_DIRECTORY/<database>/ledger under \
            systemd), fsync'd before the command reports done. When a database is restored from a backup, its \
            audit trail is older than the ledger: the service then holds live work back until an operator runs \
            gallra ledger replay or gallra ledger accept. docs/ledger.md describes the file and what verify checks.
            """,
        subcommands: [ExportLedger.self, VerifyLedger.self, ReplayLedger.self, AcceptLedger.self]
    )
}

extension CommandContext {
    /// The configured ledger's path for the database `connection` is on, or a configuration error saying how to set
    /// one.
    func configuredLedgerPath(on connection: PostgresConnection) async throws -> String {
        guard let path = try await settings.ledger.path(on: connection) else {
            throw CommandFailure(
                .configuration,
                "no erasure ledger is configured: set ledger.path in the configuration (or GALLRA_LEDGER_PATH), or "
                    + "run under systemd with StateDirectory=gallra; or name the file on the command line")
        }
        return path
    }
}
