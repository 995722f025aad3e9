#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraPolicy
import GallraPostgres

extension LedgerFile {
    /// Blocks read per query while catching up.
    public static let catchUpPageSize = 200

    /// Appends the audit blocks after the ledger's head, with their records and subject tables, and `fsync`s them:
    /// run after every live run, erasure request and `gallra erase`. A crash between a batch's commit and this
    /// append loses nothing: the next catch-up appends the block. Creates the ledger (header first) when missing.
    /// An incomplete last line (an append that never finished) is cut off first: its blocks are appended again.
    ///
    /// Holds the file's lock throughout, so two catch-ups never append the same block. Every block copied is
    /// checked against the chain first (its hash, its records' hash, its link to the block before): a ledger
    /// never holds a block the trail's own checks would refuse.
    ///
    /// - Parameter keyCheck: the audit key's check, for a new ledger's header (else the newest block's).
    /// - Returns: the blocks appended.
    /// - Throws: ``LedgerError`` `.restoreUnresolved` when the database is older than the ledger or has diverged
    ///   from it (nothing is appended), `.otherDatabase`, `.inputOutput`, `.malformed`, `.brokenTrail`.
    @discardableResult
    public static func catchUp(path: String, on connection: PostgresConnection, keyCheck: String? = nil) async throws
        -> Int
    {
        let handle = try await LedgerHandle.openWaiting(path: path)
        defer { handle.close() }
        // Its two ends only: the header and the head (what lies between, `gallra ledger verify` checks).
        let ends = try handle.readEnds()
        let complete = ends?.completeLength ?? 0
        if complete < (try handle.length()) { try handle.truncate(to: complete) }
        let facts = try await LedgerDatabase.facts(on: connection)
        if let ends { try LedgerDatabase.check(ends.header, against: facts, path: path) }
        return try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            var after = ends?.head ?? .genesis
            if after.sequence > 0 {
                let stored = try await connection.query(
                    "SELECT hash FROM gallra.audit_block WHERE sequence = $1", [.int64(after.sequence)])
                let hash = try stored.first?.decode("hash", as: String.self)
                guard hash == after.hash else {
                    throw LedgerError(
                        .restoreUnresolved, path: path,
                        "the database's audit trail does not hold the ledger's head, \(after): the database was "
                            + "restored from an older backup, or has diverged from the ledger; nothing was appended. "
                            + LedgerComparison.resolveHint)
                }
            }
            var appended = 0
            var pending: [LedgerLine] = []
            if ends == nil {
                pending.append(.header(try await header(facts, keyCheck: keyCheck, on: connection)))
            }
            var tables = SubjectTables()
            while true {
                let blocks = try await LedgerDatabase.blocks(
                    after: after.sequence, limit: catchUpPageSize, tables: &tables, on: connection)
                for block in blocks {
                    try LedgerDatabase.checkLink(block, after: after, path: path)
                    pending.append(.block(block))
                    after = block.position
                }
                try handle.write(pending)
                appended += blocks.count
                pending = []
                if blocks.count < catchUpPageSize { break }
            }
            try handle.sync()
            return appended
        }
    }
}

extension LedgerHandle {
    /// `open` with `LOCK_EX`, waiting for the lock without holding a thread of the cooperative pool.
    static func openWaiting(path: String) async throws -> LedgerHandle {
        while true {
            if let handle = try openUnlessBusy(path: path, create: true, lock: LOCK_EX | LOCK_NB) { return handle }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// The subject table of each policy version, read once per catch-up.
struct SubjectTables {
    var byVersion: [String: String] = [:]
}

/// What the ledger reads from the database.
enum LedgerDatabase {
    struct Facts: Sendable, Hashable {
        var database: String
        var systemIdentifier: String
    }

    /// `current_database()` and the cluster's system identifier (`unknown` when the role may not read it).
    static func facts(on connection: PostgresConnection) async throws -> Facts {
        let name = try await connection.query("SELECT current_database() AS name")
        let database = try name.first?.decode("name", as: String.self) ?? ""
        var identifier = "unknown"
        if let rows = try? await connection.query(
            "SELECT system_identifier::text AS id FROM pg_catalog.pg_control_system()"),
            let value = try rows.first?.decode("id", as: String.self)
        {
            identifier = value
        }
        return Facts(database: database, systemIdentifier: identifier)
    }

    /// The ledger's header names this database, or the ledger is another's: a configuration error.
    static func check(_ header: LedgerHeader, against facts: Facts, path: String) throws(LedgerError) {
        guard header.database == facts.database else {
            throw LedgerError(
                .otherDatabase, path: path, line: 1,
                "it is the ledger of database \(header.database), and this is database \(facts.database); "
                    + "set ledger.path to this database's ledger (or leave it unset: each database has its own "
                    + "under $STATE_DIRECTORY)")
        }
    }

    /// Up to `limit` blocks after sequence `after`, in order, with their records and subject tables.
    static func blocks(
        after: Int64, limit: Int, tables: inout SubjectTables, on connection: isolated PostgresConnection
    ) async throws -> [LedgerBlock] {
        let rows = try await connection.query(
            """
            SELECT sequence, run::text AS run, policy, policy_version, created_at, subjects, records_hash,
                   previous_hash, hash, key_check
            FROM gallra.audit_block WHERE sequence > $1 ORDER BY sequence LIMIT $2
            """, [.int64(after), .int64(Int64(limit))])
        guard let last = rows.last else { return [] }
        let lastSequence = try last.decode("sequence", as: Int64.self)
        let recordRows = try await connection.query(
            """
            SELECT block, ordinal, subject_digest, counts::text AS counts FROM gallra.audit_subject
            WHERE block > $1 AND block <= $2 ORDER BY block, ordinal
            """, [.int64(after), .int64(lastSequence)])
        var records: [Int64: [AuditRecord]] = [:]
        for row in recordRows {
            let stored = StoredAuditRecord(
                block: try row.decode("block", as: Int64.self), ordinal: try row.decode("ordinal", as: Int.self),
                subjectDigest: try row.decode("subject_digest", as: String.self),
                countsJSON: try row.decode("counts", as: String.self))
            guard let record = stored.record else {
                throw AuditTrailError(block: stored.block, ordinal: stored.ordinal)
            }
            records[stored.block, default: []].append(record)
        }
        var blocks: [LedgerBlock] = []
        blocks.reserveCapacity(rows.count)
        for row in rows {
            let block = try AuditTrail.decodeBlock(row)
            let table = try await subjectTable(
                policy: block.policy, version: block.policyVersion, cache: &tables, on: connection)
            blocks.append(
                LedgerBlock(
                    block, subjectTable: table, keyCheck: try row.decode("key_check", as: String?.self),
                    records: records[block.sequence] ?? []))
        }
        return blocks
    }

    /// The block continues the chain from `after` and recomputes to its own hashes.
    static func checkLink(_ block: LedgerBlock, after: LedgerPosition, path: String) throws(LedgerError) {
        let expected = block.auditBlock.expectedHash(records: block.records)
        guard block.sequence == after.sequence + 1, block.previousHash == after.hash,
            expected.recordsHash == block.recordsHash, expected.hash == block.hash,
            block.subjects == block.records.count
        else {
            throw LedgerError(
                .brokenTrail, path: path,
                "audit block \(block.sequence) does not check out against the chain (after \(after)); the ledger "
                    + "keeps only intact blocks: gallra audit verify tells where the trail breaks")
        }
    }

    /// The subject table of the policy version, as the digests were made with it: the stored document's
    /// `subject.table`, qualified by the search path when it names no schema.
    static func subjectTable(
        policy: String, version: Int, cache: inout SubjectTables, on connection: isolated PostgresConnection
    ) async throws -> String {
        let key = "\(policy)\u{0}\(version)"
        if let known = cache.byVersion[key] { return known }
        let rows = try await connection.query(
            """
            SELECT definition::text AS definition, definition->'subject'->>'table' AS table_text
            FROM gallra.policy WHERE name = $1 AND version = $2
            """, [.text(policy), .int32(Int32(version))])
        var text = ""
        if let row = rows.first {
            text = try row.decode("table_text", as: String?.self) ?? ""
            let file = PolicyFile(parsing: try row.decode("definition", as: String.self), path: "gallra.policy")
            if var table = file.policies.first?.policy.subject.table {
                if table.schema == nil {
                    let schema = try await connection.query(
                        """
                        SELECT s.name FROM unnest(current_schemas(false)) WITH ORDINALITY AS s(name, position)
                        JOIN pg_catalog.pg_namespace n ON n.nspname = s.name
                        JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = $1
                        ORDER BY s.position LIMIT 1
                        """, [.text(table.name)])
                    table.schema = try schema.first?.decode("name", as: String.self)
                }
                text = table.description
            }
        }
        cache.byVersion[key] = text
        return text
    }
}
