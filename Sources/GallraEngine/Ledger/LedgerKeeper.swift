import GallraPostgres
import Logging

/// Where the ledger of a database is: `ledger.path` when set, else `$STATE_DIRECTORY/<database>/ledger` under
/// systemd's `StateDirectory=`, else none.
public struct LedgerLocation: Sendable, Hashable {
    /// `ledger.path` from the configuration.
    public var configured: String?
    /// `$STATE_DIRECTORY` (its first path when systemd gives several).
    public var stateDirectory: String?

    public init(configured: String?, stateDirectory: String?) {
        self.configured = configured.flatMap { $0.isEmpty ? nil : $0 }
        self.stateDirectory = stateDirectory.flatMap { $0.split(separator: ":").first.map(String.init) }
    }

    /// No ledger path can be made.
    public var isNone: Bool { configured == nil && stateDirectory == nil }

    /// The ledger's path for `database` (`current_database()`); nil when neither setting is there.
    public func path(database: String) -> String? {
        if let configured { return configured }
        guard let stateDirectory else { return nil }
        // A database name may hold a slash: it stays one path component.
        let component = database.replacing("%", with: "%25").replacing("/", with: "%2F")
        return stateDirectory + "/"
            + (component == "." || component == ".." ? "%2E" + component.dropFirst() : component)
            + "/ledger"
    }

    /// The path for the database `connection` is connected to.
    public func path(on connection: PostgresConnection) async throws -> String? {
        if isNone { return nil }
        if let configured { return configured }
        let facts = try await LedgerDatabase.facts(on: connection)
        return path(database: facts.database)
    }

    /// What `run` and `erase` say once when there is no ledger.
    public static let noLedgerNotice =
        "no erasure ledger is kept (ledger.path is not set and systemd gives no $STATE_DIRECTORY): erasures "
        + "after a backup cannot be replayed once it is restored; set ledger.path (docs/ledger.md)"
}

/// Keeping the ledger around live work: the restore check before it, the catch-up after it, each logged as the
/// journal events operators watch for.
public struct LedgerKeeper: Sendable {
    public var location: LedgerLocation
    public var logger: Logger

    public init(location: LedgerLocation, logger: Logger) {
        self.location = location
        self.logger = logger
    }

    /// The restore that holds live work back, if the ledger is ahead of the database: logged as `restoreDetected`
    /// (`err`) with the heads, the fork point and what is missing. Nil without a ledger (or before its first
    /// catch-up).
    ///
    /// - Throws: ``LedgerError`` `.otherDatabase`, `.malformed`, `.inputOutput` when the ledger cannot be read.
    public func unresolvedRestore(on connection: PostgresConnection) async throws -> LedgerFork? {
        guard let path = try await location.path(on: connection) else { return nil }
        guard LedgerFile.exists(path: path) else { return nil }
        // After every run: one look at the ledger's head, which the database holds unless it was restored.
        if try await LedgerFile.databaseHoldsHead(path: path, on: connection) { return nil }
        let contents = try LedgerFile.read(path: path)
        let fork = try await LedgerComparison.forkPoint(of: contents, on: connection, path: path)
        guard fork.isRestore else { return nil }
        logger.error(
            "\(Self.restoreMessage(fork, path: path))",
            metadata: JournalEvent.restoreDetected.metadata(Self.metadata(fork, path: path)))
        return fork
    }

    /// The words of `restoreDetected`, of `run --once`'s refusal and of the service's status.
    public static func restoreMessage(_ fork: LedgerFork, path: String) -> String {
        "the database is older than its erasure ledger \(path) (a restore from a backup?), or has diverged from it: "
            + "the ledger's head is \(fork.ledgerHead), the database's \(fork.databaseHead), they agree up to "
            + "\(fork.forkPoint); \(fork.missingBlocks.count) block(s) with \(fork.missingSubjects) subject "
            + "record(s) are missing. Live runs and erasure requests wait. " + LedgerComparison.resolveHint + "."
    }

    static func metadata(_ fork: LedgerFork, path: String) -> Logger.Metadata {
        [
            "GALLRA_LEDGER": "\(path)", "GALLRA_LEDGER_HEAD": "\(fork.ledgerHead.sequence)",
            "GALLRA_LEDGER_HEAD_HASH": "\(fork.ledgerHead.hash)",
            "GALLRA_DATABASE_HEAD": "\(fork.databaseHead.sequence)",
            "GALLRA_FORK_POINT": "\(fork.forkPoint.sequence)", "GALLRA_MISSING_BLOCKS": "\(fork.missingBlocks.count)",
            "GALLRA_MISSING_SUBJECTS": "\(fork.missingSubjects)",
        ]
    }

    /// Catches the ledger up after live work (``LedgerFile/catchUp(path:on:keyCheck:)``). A ledger that cannot be
    /// written is logged as `ledgerFailed` at `critical` and returned: the caller reports it (exit 74) after its
    /// own outcome. Nil when the ledger is up to date, or there is none.
    public func catchUp(on connection: PostgresConnection, keyCheck: String?) async -> LedgerError? {
        let path: String?
        do {
            path = try await location.path(on: connection)
        } catch {
            return nil
        }
        guard let path else { return nil }
        do {
            let appended = try await LedgerFile.catchUp(path: path, on: connection, keyCheck: keyCheck)
            if appended > 0 {
                logger.debug(
                    "appended \(appended) block(s) to the erasure ledger", metadata: ["GALLRA_LEDGER": "\(path)"])
            }
            return nil
        } catch let error as LedgerError {
            let message =
                "the erasure ledger was not written: \(error.message). The work is committed and audited in the "
                + "database; the ledger catches up at the next run once it can be written"
            logger.critical(
                "\(message)",
                metadata: JournalEvent.ledgerFailed.metadata(["GALLRA_LEDGER": "\(path)"]))
            return error
        } catch {
            let failure = LedgerError(
                .inputOutput, path: path, "cannot read the audit blocks to append: \(error)")
            logger.critical(
                "the erasure ledger was not written: \(failure.message); it catches up at the next run",
                metadata: JournalEvent.ledgerFailed.metadata(["GALLRA_LEDGER": "\(path)"]))
            return failure
        }
    }
}
