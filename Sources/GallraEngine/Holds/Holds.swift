import GallraCore
import GallraPolicy
import GallraPostgres

/// Legal holds as records (`gallra.hold`): placing one, listing them, releasing one, and the holds in force on a
/// subject. Placing and releasing each append one event to `gallra.audit_event` in the same transaction, so the
/// hold and its record commit together; the event holds the subject's digest (with an audit key), never its key.
///
/// The planner reads the same table: a subject a hold in force names is not due (``Planner``'s due predicate).
public enum Holds {
    /// What a new hold stops.
    public struct Placement: Sendable {
        public var table: QualifiedName
        public var match: SubjectMatch
        /// Why, for people (a case number): 1 to 1024 bytes.
        public var reason: String
        /// When it ends by itself; nil: until released. Must be in the future.
        public var until: PostgresTimestamp?
        /// The one policy it stops (a stored policy over the table); nil: every policy over the table.
        public var policy: String?

        public init(
            table: QualifiedName, match: SubjectMatch, reason: String, until: PostgresTimestamp? = nil,
            policy: String? = nil
        ) {
            self.table = table
            self.match = match
            self.reason = reason
            self.until = until
            self.policy = policy
        }
    }

    /// Places a hold on the subject `placement` names, found in its table by ``SubjectFinder``, with its
    /// `hold_placed` event, in one transaction. With `digester` the hold and the event record the subject's digest.
    ///
    /// - Throws: ``SubjectFinderError`` (no such subject exits 66), ``HoldError`` for a bad reason, an `until`
    ///   not in the future, or a policy that is not stored over the table; nothing is written then.
    public static func place(
        _ placement: Placement, digester: SubjectDigester?, osUser: String, on connection: PostgresConnection
    ) async throws -> Hold {
        try checkReason(placement.reason, what: "the reason")
        return try await connection.transaction { connection in
            let subject = try await SubjectFinder.find(table: placement.table, placement.match, on: connection)
            let table = subject.table.description
            try await lockRow(of: subject, on: connection)
            if let policy = placement.policy {
                try await checkPolicy(policy, over: subject.table, on: connection)
            }
            if let until = placement.until {
                let ahead = try await connection.query(
                    "SELECT $1::timestamptz > clock_timestamp() AS ahead", [.timestamptz(until)]
                ).first?.decode("ahead", as: Bool.self)
                guard ahead == true else {
                    throw HoldError(
                        .untilPassed,
                        "--until \(until.iso8601Milliseconds) is not in the future: give the date the hold ends, "
                            + "or leave --until out for a hold that lasts until released")
                }
            }
            let digest = digester?.digest(table: table, key: subject.key)
            let rows = try await connection.query(
                """
                INSERT INTO gallra.hold AS h (subject_table, subject_key, subject_digest, policy, reason, placed_by, until)
                VALUES ($1, $2, $3, $4, $5, $6 || ' (role ' || current_user || ')', $7)
                RETURNING \(columns)
                """,
                [
                    .text(table), .text(subject.key), digest.map { .text($0) } ?? .null,
                    placement.policy.map { .text($0) } ?? .null, .text(placement.reason), .text(osUser),
                    placement.until.map { .timestamptz($0) } ?? .null,
                ])
            guard let row = rows.first else {
                throw PostgresError(.decoding, "inserting into gallra.hold returned no row")
            }
            let hold = try decode(row)
            try await AuditEvents.append(
                .holdPlaced, subjectTable: table, subjectDigest: digest,
                detail: detail(hold, reason: hold.reason), osUser: osUser, inTransactionOn: connection)
            return hold
        }
    }

    /// Releases hold `id` with `reason`, with its `hold_released` event, in one transaction. The event carries the
    /// digest the hold recorded, or the one `digester` makes when it recorded none.
    ///
    /// - Throws: ``HoldError`` `.noSuchHold` (exit 66) for an unknown id, `.notInForce` for a hold released
    ///   already or expired, `.badReason`; nothing is written then.
    public static func release(
        id: Int64, reason: String, digester: SubjectDigester?, osUser: String, on connection: PostgresConnection
    ) async throws -> Hold {
        try checkReason(reason, what: "the reason for the release")
        return try await connection.transaction { connection in
            let found = try await connection.query(
                "SELECT \(columns) FROM gallra.hold AS h WHERE h.id = $1 FOR UPDATE", [.int64(id)]
            ).first
            guard let found else {
                throw HoldError(.noSuchHold, "no hold has id \(id); gallra hold list --all lists them")
            }
            let hold = try decode(found)
            switch hold.state {
            case .inForce: break
            case .released:
                throw HoldError(
                    .notInForce,
                    "hold \(id) was released already, at "
                        + "\(PostgresTimestamp(microsecondsSince2000: (hold.releasedAtMicroseconds ?? 0) - epochOffset).iso8601Milliseconds); "
                        + "there is nothing to release")
            case .expired:
                throw HoldError(
                    .notInForce,
                    "hold \(id) expired at "
                        + "\(PostgresTimestamp(microsecondsSince2000: (hold.untilMicroseconds ?? 0) - epochOffset).iso8601Milliseconds) "
                        + "and no longer stops any policy; there is nothing to release")
            }
            let rows = try await connection.query(
                """
                UPDATE gallra.hold AS h SET released_at = clock_timestamp(),
                    released_by = $2 || ' (role ' || current_user || ')', release_reason = $3
                WHERE h.id = $1
                RETURNING \(columns)
                """, [.int64(id), .text(osUser), .text(reason)])
            guard let row = rows.first else { throw PostgresError(.decoding, "releasing hold \(id) returned no row") }
            let released = try decode(row)
            let digest =
                released.subjectDigest
                ?? released.subjectKey.map { key in digester?.digest(table: released.subjectTable, key: key) } ?? nil
            try await AuditEvents.append(
                .holdReleased, subjectTable: released.subjectTable, subjectDigest: digest,
                detail: detail(released, reason: reason), osUser: osUser, inTransactionOn: connection)
            return released
        }
    }

    /// Which holds ``list(_:subject:digest:on:)`` returns.
    public enum Selection: Sendable {
        /// Holds in force now.
        case inForce
        /// Every hold: in force, released and expired.
        case all
    }

    /// Holds in id order: those in force now, or all of them; with `subject` (table and key), those of that subject
    /// (by key, or by `digest` for holds whose key was replaced by the digest).
    public static func list(
        _ selection: Selection, subject: (table: String, key: String)? = nil, digest: String? = nil,
        on connection: PostgresConnection
    ) async throws -> [Hold] {
        var conditions: [String] = []
        var parameters: [PostgresValue] = []
        if selection == .inForce {
            conditions.append("h.released_at IS NULL AND (h.until IS NULL OR h.until > clock_timestamp())")
        }
        if let subject {
            parameters += [.text(subject.table), .text(subject.key)]
            var match = "h.subject_key = $2"
            if let digest {
                parameters.append(.text(digest))
                match = "(\(match) OR h.subject_digest = $3)"
            }
            conditions.append("h.subject_table = $1 AND \(match)")
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try await connection.query(
            "SELECT \(columns) FROM gallra.hold AS h \(filter) ORDER BY h.id", parameters
        ).map(decode)
    }

    /// The holds in force at `asOf` (now when nil) that stop `policy` for the subject, in id order: those for
    /// every policy and those naming `policy`; with `policy` nil, every hold in force on the subject.
    ///
    /// `subjectTable` is the subject table schema-qualified, as the audit digests name it
    /// (`QualifiedName.description`); `subjectKey` the key as PostgreSQL prints it. What the planner's due
    /// predicate checks, for a caller that needs the holds themselves (their ids and reasons): an erasure request
    /// refused with the hold named, `gallra explain`.
    public static func inForce(
        subjectTable: String, subjectKey: String, policy: String?, asOf: PostgresTimestamp?,
        on connection: PostgresConnection
    ) async throws -> [Hold] {
        try await connection.query(
            """
            SELECT \(columns) FROM gallra.hold AS h
            WHERE h.subject_table = $1 AND h.subject_key = $2 AND h.released_at IS NULL
              AND (h.until IS NULL OR h.until > coalesce($3::timestamptz, clock_timestamp()))
              AND ($4::text IS NULL OR h.policy IS NULL OR h.policy = $4::text)
            ORDER BY h.id
            """,
            [
                .text(subjectTable), .text(subjectKey), asOf.map { .timestamptz($0) } ?? .null,
                policy.map { .text($0) } ?? .null,
            ]
        ).map(decode)
    }

    /// In a batch's transaction: the holds of the batch's processed subjects name them by digest only from now on.
    /// A processed subject's holds have ended (a hold in force keeps its subject from being due): released ones get
    /// the digest for the key; expired ones are recorded as released at their `until` first. A hold that names
    /// another policy and is still in force keeps the key while the subject row remains: it still stops that policy.
    /// Once the batch has deleted the subject row (`erased`), nothing is left for such a hold to stop: it is recorded
    /// as released by gallra, saying under which policy the subject was erased, and keeps the digest only.
    ///
    /// `keys`, `digests` and `erased` are parallel; `subjectTable` as ``inForce(subjectTable:subjectKey:policy:asOf:on:)``
    /// takes it. The statement, for the batch's transaction (which sends it with its audit block).
    static func forgetKeys(
        subjectTable: String, keys: [String], digests: [String], erased: [Bool], policy: String,
        asOf: PostgresTimestamp
    ) -> PostgresStatement {
        PostgresStatement(
            """
            UPDATE gallra.hold AS h
            SET subject_key = NULL, subject_digest = d.digest,
                released_at = coalesce(h.released_at,
                    CASE WHEN h.until <= $4::timestamptz THEN h.until ELSE clock_timestamp() END),
                released_by = coalesce(h.released_by, 'gallra'),
                release_reason = coalesce(h.release_reason,
                    CASE WHEN h.until <= $4::timestamptz THEN 'expired: its until passed'
                         ELSE 'its subject was erased under policy ' || $6 END)
            FROM unnest(ARRAY(SELECT jsonb_array_elements_text($2::jsonb)),
                        ARRAY(SELECT jsonb_array_elements_text($3::jsonb)),
                        ARRAY(SELECT (jsonb_array_elements($5::jsonb))::text::boolean)) AS d(key, digest, erased)
            WHERE h.subject_table = $1 AND h.subject_key = d.key
              AND (h.released_at IS NOT NULL OR h.until <= $4::timestamptz OR d.erased)
            """,
            [
                .text(subjectTable), .jsonb(JSONValue.stringArrayText(keys)),
                .jsonb(JSONValue.stringArrayText(digests)), .timestamptz(asOf), .jsonb(JSONValue.boolArrayText(erased)),
                .text(policy),
            ])
    }

    // MARK: - Rows

    static let epochOffset = AuditTrail.postgresEpochOffset

    static let columns = """
        h.id, h.subject_table::text AS subject_table, h.subject_key::text AS subject_key, h.subject_digest,
        h.policy::text AS policy, h.reason, h.placed_at, h.placed_by, h.until, h.released_at, h.released_by,
        h.release_reason,
        CASE WHEN h.released_at IS NOT NULL THEN 'released'
             WHEN h.until IS NOT NULL AND h.until <= clock_timestamp() THEN 'expired'
             ELSE 'in_force' END AS state
        """

    static func decode(_ row: PostgresRow) throws -> Hold {
        func micros(_ column: String) throws -> Int64? {
            try row.decode(column, as: PostgresTimestamp?.self).map { $0.microsecondsSince2000 + epochOffset }
        }
        let state = try row.decode("state", as: String.self)
        return Hold(
            id: try row.decode("id", as: Int64.self),
            subjectTable: try row.decode("subject_table", as: String.self),
            subjectKey: try row.decode("subject_key", as: String?.self),
            subjectDigest: try row.decode("subject_digest", as: String?.self),
            policy: try row.decode("policy", as: String?.self),
            reason: try row.decode("reason", as: String.self),
            placedAtMicroseconds: try micros("placed_at") ?? 0,
            placedBy: try row.decode("placed_by", as: String.self),
            untilMicroseconds: try micros("until"),
            releasedAtMicroseconds: try micros("released_at"),
            releasedBy: try row.decode("released_by", as: String?.self),
            releaseReason: try row.decode("release_reason", as: String?.self),
            state: Hold.State(rawValue: state) ?? .inForce)
    }

    /// The event's detail: the hold's id, policy, until and the reason (the placement's, or the release's); never
    /// the key.
    static func detail(_ hold: Hold, reason: String) -> String {
        let until = hold.untilMicroseconds.map {
            JSONValue.string(PostgresTimestamp(microsecondsSince2000: $0 - epochOffset).iso8601Milliseconds)
        }
        return JSONValue.object([
            "hold": .number(String(hold.id)),
            "policy": hold.policy.map(JSONValue.string) ?? .null,
            "until": until ?? .null,
            "reason": .string(reason),
        ]).canonicalText
    }

    static func checkReason(_ reason: String, what: String) throws(HoldError) {
        guard !reason.isEmpty else {
            throw HoldError(.badReason, "\(what) is empty: say why, for the people who read it later (a case number)")
        }
        guard reason.utf8.count <= 1024 else {
            throw HoldError(
                .badReason, "\(what) is \(reason.utf8.count) bytes, more than 1024: keep it short (a case number)")
        }
    }

    /// Locks the subject's row `FOR SHARE` until the hold commits: a batch processing the subject (its row locked
    /// `FOR UPDATE` or `FOR NO KEY UPDATE`) finishes first, and a batch picking meanwhile skips the subject
    /// (`SKIP LOCKED`) and sees the hold at its next pick. Without it, a batch that confirmed its subjects just
    /// before the hold committed would process the subject after `gallra hold add` had returned.
    static func lockRow(of subject: FoundSubject, on connection: PostgresConnection) async throws {
        let table = SQLIdentifier.quoted(schema: subject.table.schema, name: subject.table.name)
        let type = try await connection.query(
            """
            SELECT format_type(a.atttypid, NULL) AS type FROM pg_attribute AS a
            WHERE a.attrelid = $1::text::regclass AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
            """, [.text(table), .text(subject.keyColumn.name)]
        ).first?.decode("type", as: String.self)
        guard let type else {
            throw SubjectFinderError(.uncoveredTable, "\(subject.table) has no column \(subject.keyColumn)")
        }
        try SQLText.checkTypeName(type)
        try await connection.execute(
            """
            SELECT FROM \(table) AS s WHERE s.\(SQLIdentifier.quoted(subject.keyColumn.name)) = $1::text::\(type)
            FOR SHARE OF s
            """, [.text(subject.key)])
    }

    /// `policy` must be a stored policy whose subjects are in `table`.
    static func checkPolicy(_ policy: String, over table: QualifiedName, on connection: PostgresConnection)
        async throws
    {
        let catalog = try await CatalogReader.read(on: connection)
        let stored = try await PolicyStore(connection: connection).loadAll().policies
        let over = stored.filter { (catalog.table($0.policy.subject.table)?.name ?? $0.policy.subject.table) == table }
        guard over.contains(where: { $0.stored.name == policy }) else {
            let names = over.map(\.stored.name).sorted()
            let known =
                names.isEmpty
                ? "no stored policy has its subjects there" : "the policies over it: \(names.joined(separator: ", "))"
            let stray = stored.contains { $0.stored.name == policy } ? "policy \(policy) is not over \(table)" : nil
            throw HoldError(
                .unknownPolicy,
                "\(stray ?? "no stored policy is named \(policy)"); --policy names a policy over \(table) (\(known)), "
                    + "or leave it out to stop every policy over the table")
        }
    }
}
