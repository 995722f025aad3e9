import GallraPostgres

/// Where a ledger and a database part: the last block they agree on.
public struct LedgerFork: Sendable, Hashable {
    /// The last block of the ledger's current branch whose hash the database holds at the same sequence (sequence 0
    /// when they share no block).
    public var forkPoint: LedgerPosition
    /// The head of the ledger's current branch (``LedgerPosition/genesis`` for a ledger without blocks).
    public var ledgerHead: LedgerPosition
    /// The database's head (`gallra.audit_head`).
    public var databaseHead: LedgerPosition
    /// The ledger's blocks after the fork point: what the database lost (or never had).
    public var missingBlocks: [LedgerBlock]
    /// The ledger's header names another cluster (`system_identifier`): expected after a restore into a new
    /// cluster, advisory only.
    public var systemIdentifierDiffers: Bool

    public init(
        forkPoint: LedgerPosition, ledgerHead: LedgerPosition, databaseHead: LedgerPosition,
        missingBlocks: [LedgerBlock], systemIdentifierDiffers: Bool
    ) {
        self.forkPoint = forkPoint
        self.ledgerHead = ledgerHead
        self.databaseHead = databaseHead
        self.missingBlocks = missingBlocks
        self.systemIdentifierDiffers = systemIdentifierDiffers
    }

    /// The ledger's head is beyond the fork point: the database is older than the ledger (a restore) or has
    /// diverged from it. Live runs and erasure requests wait until an operator resolves it.
    public var isRestore: Bool { ledgerHead.sequence > forkPoint.sequence }

    /// Subject records in the missing blocks.
    public var missingSubjects: Int { missingBlocks.reduce(0) { $0 + $1.records.count } }
}

/// Comparing a ledger with the database's audit trail.
public enum LedgerComparison {
    /// Blocks whose hashes are read per query while looking for the fork point, newest first.
    public static let forkPageSize = 1000

    /// What an operator does about a restore, in the words every message uses.
    public static let resolveHint =
        "Run gallra ledger replay --dry-run to see the erasures to apply again, then gallra ledger replay, "
        + "or gallra ledger accept to take the database as it is"

    /// The fork point of `contents` and the database: its head if the database holds the ledger's head block (the
    /// usual case, one query), else the newest block of the ledger's current branch the database holds with the
    /// same hash (the chain links every block to the ones before, so every block before it agrees too).
    ///
    /// - Throws: ``LedgerError`` `.otherDatabase` when the header names another database (the system identifier
    ///   is only compared: ``LedgerFork/systemIdentifierDiffers``).
    public static func forkPoint(of contents: LedgerContents, on connection: PostgresConnection, path: String = "")
        async throws -> LedgerFork
    {
        let facts = try await LedgerDatabase.facts(on: connection)
        try LedgerDatabase.check(contents.header, against: facts, path: path)
        let branch = contents.currentBranch
        let ledgerHead = contents.headPosition ?? .genesis
        return try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            let headRows = try await connection.query("SELECT sequence, hash FROM gallra.audit_head")
            let databaseHead =
                try headRows.first.map {
                    LedgerPosition(
                        sequence: try $0.decode("sequence", as: Int64.self),
                        hash: try $0.decode("hash", as: String.self))
                } ?? .genesis
            var fork: LedgerPosition?
            if ledgerHead.sequence == 0 {
                fork = .genesis
            } else {
                // Newest first, a page at a time: the ledger's blocks down to the first the database agrees on.
                var upTo = ledgerHead.sequence
                let hashes = Dictionary(branch.map { ($0.sequence, $0.hash) }, uniquingKeysWith: { _, last in last })
                let lowest = branch.first?.sequence ?? ledgerHead.sequence
                if hashes[ledgerHead.sequence] == nil {
                    // A restore line with no block after it: its head is a block of the lost branch's past.
                    let row = try await connection.query(
                        "SELECT hash FROM gallra.audit_block WHERE sequence = $1", [.int64(ledgerHead.sequence)])
                    if try row.first?.decode("hash", as: String.self) == ledgerHead.hash { fork = ledgerHead }
                    upTo = ledgerHead.sequence - 1
                }
                while fork == nil, upTo >= lowest {
                    let from = max(lowest, upTo - Int64(forkPageSize) + 1)
                    let rows = try await connection.query(
                        """
                        SELECT sequence, hash FROM gallra.audit_block WHERE sequence BETWEEN $1 AND $2
                        ORDER BY sequence DESC
                        """, [.int64(from), .int64(upTo)])
                    for row in rows {
                        let sequence = try row.decode("sequence", as: Int64.self)
                        let hash = try row.decode("hash", as: String.self)
                        if hashes[sequence] == hash {
                            fork = LedgerPosition(sequence: sequence, hash: hash)
                            break
                        }
                    }
                    upTo = from - 1
                }
                if fork == nil, let first = branch.first {
                    // The database holds none of the ledger's blocks: they part before its first block (sequence 0
                    // for a ledger that starts at block 1; for an export with --since, the block it starts after).
                    fork = LedgerPosition(sequence: first.sequence - 1, hash: first.previousHash)
                }
            }
            let forkPoint = fork ?? .genesis
            return LedgerFork(
                forkPoint: forkPoint, ledgerHead: ledgerHead, databaseHead: databaseHead,
                missingBlocks: branch.filter { $0.sequence > forkPoint.sequence },
                systemIdentifierDiffers: contents.header.systemIdentifier != facts.systemIdentifier)
        }
    }
}
