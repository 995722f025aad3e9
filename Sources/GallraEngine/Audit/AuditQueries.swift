#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraPostgres

/// A block of the audit trail as `gallra audit show` lists it: the block, its rows per action, and
/// optionally its records.
public struct AuditBlockEntry: Sendable, Hashable, Codable {
    public var block: AuditBlock
    /// Rows deleted, anonymized and retained by the batch, summed over its records.
    public var deleted: Int
    public var anonymized: Int
    public var retained: Int
    /// The subject records in their order, when asked for.
    public var records: [AuditRecord]?
}

/// One record of one subject, with the block it belongs to: what `gallra audit lookup` answers.
public struct AuditSubjectEntry: Sendable, Hashable, Codable {
    public var block: Int64
    /// The record's place in its block.
    public var ordinal: Int
    public var run: String
    public var policy: String
    public var policyVersion: Int
    /// When the batch ran, in microseconds since 1970-01-01 UTC.
    public var createdAtMicroseconds: Int64
    public var counts: [AuditCount]
}

/// A row of `gallra.run`.
public struct AuditRun: Sendable, Hashable, Codable {
    public var id: String
    /// `live` or `dry`.
    public var mode: String
    public var trigger: String
    /// Microseconds since 1970-01-01 UTC, as stored.
    public var asOfMicroseconds: Int64
    public var startedAtMicroseconds: Int64
    public var finishedAtMicroseconds: Int64?
    public var outcome: String
    /// The run's counts, as the JSON text stored in `gallra.run.counts`.
    public var countsJSON: String
}

/// Which blocks `AuditTrail.show` lists.
public struct AuditBlockFilter: Sendable, Hashable {
    /// Only the blocks of this run (its id).
    public var run: UUID?
    public var policy: String?
    /// Only blocks written at or after this instant.
    public var since: PostgresTimestamp?
    /// At most this many blocks.
    public var limit: Int
    /// Oldest first (by sequence) instead of newest first.
    public var oldestFirst: Bool

    public init(
        run: UUID? = nil, policy: String? = nil, since: PostgresTimestamp? = nil, limit: Int = 50,
        oldestFirst: Bool = false
    ) {
        self.run = run
        self.policy = policy
        self.since = since
        self.limit = limit
        self.oldestFirst = oldestFirst
    }
}

/// A stored record whose counts are not what gallra writes: the trail was altered.
public struct AuditTrailError: Error, Sendable, CustomStringConvertible {
    public var block: Int64
    public var ordinal: Int

    public var description: String {
        "subject record \(ordinal) of audit block \(block) cannot be read: the trail was altered; "
            + "gallra audit verify tells where it first breaks"
    }
}

extension AuditTrail {
    /// Blocks matching `filter`, newest first unless `oldestFirst`, with their rows per action and, if
    /// `includeRecords`, their subject records. Reads in one `REPEATABLE READ READ ONLY` transaction.
    public static func show(
        _ filter: AuditBlockFilter = AuditBlockFilter(), includeRecords: Bool = false,
        on connection: PostgresConnection
    ) async throws -> [AuditBlockEntry] {
        try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            // Counts are summed on the server; a tampered counts value that is not an array of objects with
            // numeric rows adds nothing here (verify reports it) rather than failing the listing.
            let rows = try await connection.query(
                """
                SELECT b.sequence, b.run::text AS run, b.policy, b.policy_version, b.created_at, b.subjects,
                       b.records_hash, b.previous_hash, b.hash,
                       coalesce(t.deleted, 0) AS deleted, coalesce(t.anonymized, 0) AS anonymized,
                       coalesce(t.retained, 0) AS retained
                FROM gallra.audit_block b
                LEFT JOIN LATERAL (
                    SELECT round(sum(rows) FILTER (WHERE action = 'deleted'))::bigint AS deleted,
                           round(sum(rows) FILTER (WHERE action = 'anonymized'))::bigint AS anonymized,
                           round(sum(rows) FILTER (WHERE action = 'retained'))::bigint AS retained
                    FROM (
                        SELECT c->>'action' AS action,
                               CASE WHEN jsonb_typeof(c->'rows') = 'number' THEN (c->>'rows')::numeric END AS rows
                        FROM gallra.audit_subject s,
                             jsonb_array_elements(CASE jsonb_typeof(s.counts) WHEN 'array' THEN s.counts
                                                  ELSE '[]'::jsonb END) AS c
                        WHERE s.block = b.sequence AND jsonb_typeof(c) = 'object'
                    ) AS counted
                ) AS t ON true
                WHERE ($1::uuid IS NULL OR b.run = $1::uuid)
                  AND ($2::text IS NULL OR b.policy = $2::text)
                  AND ($3::timestamptz IS NULL OR b.created_at >= $3::timestamptz)
                ORDER BY CASE WHEN $4 THEN b.sequence END ASC, b.sequence DESC
                LIMIT $5
                """,
                [
                    filter.run.map { .uuid($0) } ?? .null, filter.policy.map { .text($0) } ?? .null,
                    filter.since.map { .timestamptz($0) } ?? .null, .bool(filter.oldestFirst),
                    .int64(Int64(max(filter.limit, 0))),
                ])
            var entries = try rows.map { row in
                AuditBlockEntry(
                    block: try decodeBlock(row), deleted: try row.decode("deleted", as: Int.self),
                    anonymized: try row.decode("anonymized", as: Int.self),
                    retained: try row.decode("retained", as: Int.self), records: nil)
            }
            if includeRecords, !entries.isEmpty {
                let records = try await connection.query(
                    """
                    SELECT block, ordinal, subject_digest, counts::text AS counts FROM gallra.audit_subject
                    WHERE block = ANY($1::bigint[]) ORDER BY block, ordinal
                    """, [.text("{" + entries.map { String($0.block.sequence) }.joined(separator: ",") + "}")])
                var byBlock: [Int64: [AuditRecord]] = [:]
                for row in records {
                    let stored = StoredAuditRecord(
                        block: try row.decode("block", as: Int64.self),
                        ordinal: try row.decode("ordinal", as: Int.self),
                        subjectDigest: try row.decode("subject_digest", as: String.self),
                        countsJSON: try row.decode("counts", as: String.self))
                    guard let record = stored.record else {
                        throw AuditTrailError(block: stored.block, ordinal: stored.ordinal)
                    }
                    byBlock[stored.block, default: []].append(record)
                }
                for index in entries.indices {
                    entries[index].records = byBlock[entries[index].block.sequence] ?? []
                }
            }
            return entries
        }
    }

    /// Every record of the subject with this digest (`SubjectDigester.digest(table:key:)`), oldest first,
    /// with its block's run, policy, version and time.
    public static func lookup(digest: String, on connection: PostgresConnection) async throws -> [AuditSubjectEntry] {
        let rows = try await connection.query(
            """
            SELECT s.block, s.ordinal, s.counts::text AS counts, b.run::text AS run, b.policy, b.policy_version,
                   b.created_at
            FROM gallra.audit_subject s JOIN gallra.audit_block b ON b.sequence = s.block
            WHERE s.subject_digest = $1
            ORDER BY s.block, s.ordinal
            """, [.text(digest)])
        return try rows.map { row in
            let stored = StoredAuditRecord(
                block: try row.decode("block", as: Int64.self), ordinal: try row.decode("ordinal", as: Int.self),
                subjectDigest: digest, countsJSON: try row.decode("counts", as: String.self))
            guard let counts = stored.record?.counts else {
                throw AuditTrailError(block: stored.block, ordinal: stored.ordinal)
            }
            return AuditSubjectEntry(
                block: stored.block, ordinal: stored.ordinal, run: try row.decode("run", as: String.self),
                policy: try row.decode("policy", as: String.self),
                policyVersion: try row.decode("policy_version", as: Int.self),
                createdAtMicroseconds: try row.decode("created_at", as: PostgresTimestamp.self).microsecondsSince2000
                    + postgresEpochOffset,
                counts: counts)
        }
    }

    /// How many subject records the blocks of `policies` hold, by the audit key they were made with: the key of
    /// `keyCheck` (``SubjectDigester/keyCheck``), another key, or a key no block names (written before schema
    /// version 13). A digest of this key can match only the first.
    public static func recordsByKey(
        policies: [String], keyCheck: String, on connection: PostgresConnection
    ) async throws -> AuditRecordsByKey {
        let rows = try await connection.query(
            """
            SELECT coalesce(sum(subjects) FILTER (WHERE key_check = $2), 0)::bigint AS this_key,
                   coalesce(sum(subjects) FILTER (WHERE key_check <> $2), 0)::bigint AS other_keys,
                   coalesce(sum(subjects) FILTER (WHERE key_check IS NULL), 0)::bigint AS unnamed
            FROM gallra.audit_block
            WHERE policy IN (SELECT jsonb_array_elements_text($1::jsonb))
            """, [.jsonb(Engine.jsonArray(policies)), .text(keyCheck)])
        guard let row = rows.first else { return AuditRecordsByKey(thisKey: 0, otherKeys: 0, unnamed: 0) }
        return AuditRecordsByKey(
            thisKey: try row.decode("this_key", as: Int.self), otherKeys: try row.decode("other_keys", as: Int.self),
            unnamed: try row.decode("unnamed", as: Int.self))
    }

    /// The runs in `gallra.run`, newest first; `id` picks one.
    public static func runs(id: UUID? = nil, limit: Int = 50, on connection: PostgresConnection) async throws
        -> [AuditRun]
    {
        let rows = try await connection.query(
            """
            SELECT id::text AS id, mode, trigger, as_of, started_at, finished_at, outcome, counts::text AS counts
            FROM gallra.run WHERE ($1::uuid IS NULL OR id = $1::uuid)
            ORDER BY started_at DESC, id LIMIT $2
            """, [id.map { .uuid($0) } ?? .null, .int64(Int64(max(limit, 0)))])
        return try rows.map { row in
            AuditRun(
                id: try row.decode("id", as: String.self), mode: try row.decode("mode", as: String.self),
                trigger: try row.decode("trigger", as: String.self),
                asOfMicroseconds: try microseconds(row.decode("as_of", as: PostgresTimestamp.self)),
                startedAtMicroseconds: try microseconds(row.decode("started_at", as: PostgresTimestamp.self)),
                finishedAtMicroseconds: try row.decode("finished_at", as: PostgresTimestamp?.self).map(microseconds),
                outcome: try row.decode("outcome", as: String.self),
                countsJSON: try row.decode("counts", as: String.self))
        }
    }

    private static func microseconds(_ timestamp: PostgresTimestamp) -> Int64 {
        timestamp.microsecondsSince2000 + postgresEpochOffset
    }
}

import GallraCore

extension AuditTrailError: ExitStatusProviding {
    public var exitStatus: ExitStatus { .dataError }
}

/// How many subject records some policies' blocks hold, by the audit key that made their digests.
public struct AuditRecordsByKey: Sendable, Hashable {
    /// Made with the key asked about.
    public var thisKey: Int
    /// Made with another key.
    public var otherKeys: Int
    /// In blocks that name no key (written before schema version 13).
    public var unnamed: Int

    public init(thisKey: Int, otherKeys: Int, unnamed: Int) {
        self.thisKey = thisKey
        self.otherKeys = otherKeys
        self.unnamed = unnamed
    }
}
