import GallraPostgres

extension LedgerFile {
    /// A ledger made from the audit trail of an existing installation: its header, then every block (those written
    /// at or after `since`, when given) with its records and subject table, checked against the chain as they are
    /// read, handed to `write` a page at a time. Reads in one `REPEATABLE READ READ ONLY` snapshot.
    ///
    /// - Returns: the blocks exported.
    @discardableResult
    public static func export(
        since: PostgresTimestamp? = nil, keyCheck: String? = nil, on connection: PostgresConnection,
        write: @Sendable ([LedgerLine]) throws -> Void
    ) async throws -> Int {
        let facts = try await LedgerDatabase.facts(on: connection)
        return try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            var after = LedgerPosition.genesis
            if let since {
                let first = try await connection.query(
                    """
                    SELECT sequence, previous_hash FROM gallra.audit_block WHERE created_at >= $1
                    ORDER BY sequence LIMIT 1
                    """, [.timestamptz(since)])
                guard let row = first.first else {
                    try write([.header(try await header(facts, keyCheck: keyCheck, on: connection))])
                    return 0
                }
                after = LedgerPosition(
                    sequence: try row.decode("sequence", as: Int64.self) - 1,
                    hash: try row.decode("previous_hash", as: String.self))
            }
            var pending: [LedgerLine] = [.header(try await header(facts, keyCheck: keyCheck, on: connection))]
            var tables = SubjectTables()
            var exported = 0
            while true {
                let blocks = try await LedgerDatabase.blocks(
                    after: after.sequence, limit: catchUpPageSize, tables: &tables, on: connection)
                for block in blocks {
                    try LedgerDatabase.checkLink(block, after: after, path: "(export)")
                    pending.append(.block(block))
                    after = block.position
                }
                try write(pending)
                pending = []
                exported += blocks.count
                if blocks.count < catchUpPageSize { break }
            }
            return exported
        }
    }

    /// A new ledger's header for this database.
    static func header(
        _ facts: LedgerDatabase.Facts, keyCheck: String?, on connection: isolated PostgresConnection
    ) async throws -> LedgerHeader {
        var check = keyCheck
        if check == nil {
            let newest = try await connection.query(
                "SELECT key_check FROM gallra.audit_block ORDER BY sequence DESC LIMIT 1")
            check = try newest.first?.decode("key_check", as: String?.self) ?? nil
        }
        return LedgerHeader(
            database: facts.database, systemIdentifier: facts.systemIdentifier, keyCheck: check,
            createdAt: LedgerTime.now())
    }
}
