// The consent guards of `collect: with_consent` (docs/consent.md, "Collection by consent").
//
// An active policy with `collect: with_consent` guards each data-point table that links to the subject directly:
// a row trigger before INSERT, and one before an UPDATE of the linking columns that changes them, call a trigger
// function that refuses the row (SQLSTATE GC009) unless the subject's latest consent event for the policy is a grant.
// A row whose linking columns hold a null belongs to no subject and is let through; so is an update that leaves the
// row with its subject (gallra's own anonymization among them).
//
// The function is generated per policy and table, so that it reads the row's columns by name (PL/pgSQL has no
// cheaper way) and its WHEN clauses keep the triggers from firing at all for rows that need no check. It runs as
// its owner (SECURITY DEFINER, every name qualified or the search_path pinned): the shop's roles need no right on
// gallra's schema, and a caller's search_path cannot put an object of its own in the function's way.
//
// Guards are installed, replaced and removed by `PolicyStore` in the transaction that stores the policy version,
// so that a policy and its guards never disagree. An apply whose guards are already installed as it would install
// them changes nothing and takes no lock on the shop's tables.
import GallraCore
import GallraPolicy
import GallraPostgres

/// One consent guard: a table whose rows may be written only for subjects with consent in force.
public struct ConsentGuard: Sendable, Hashable {
    /// The policy whose consent is checked.
    public var policy: PolicyName
    /// The subject table as the policy names it: the registry's `subject_table`.
    public var registryTable: String
    /// The subject table and key, as the catalog has them.
    public var subject: ResolvedSubject
    /// The guarded table and its linking columns.
    public var guarded: ResolvedCollectionGuard

    /// The guards a resolved policy asks for when it is active: none for `collect: always`, nor for a draft or a
    /// disabled policy.
    public static func guards(of resolved: ResolvedPolicy) -> [ConsentGuard] {
        guard wantsGuards(resolved.policy) else { return [] }
        return resolved.guards.map {
            ConsentGuard(
                policy: resolved.name, registryTable: resolved.policy.subject.table.description,
                subject: resolved.subject, guarded: $0)
        }
    }

    /// Whether `policy` has guards installed while it is stored: active, with `collect: with_consent`.
    public static func wantsGuards(_ policy: Policy) -> Bool {
        policy.state == .active && policy.collection == .withConsent
    }

    /// The guarded table and its linking columns, for people: `shop.newsletter_log (customer_ref)`.
    public var place: String {
        "\(guarded.table.description) (\(guarded.columns.map(\.description).joined(separator: ", ")))"
    }

    /// `consent_guard_` and 16 hex digits of the SHA-256 of the policy name, the table and the linking columns: one
    /// name per policy and link, within PostgreSQL's 63 bytes whatever their length.
    public var functionName: String {
        let link = [policy.rawValue, guarded.table.description] + guarded.columns.map(\.name)
        return "consent_guard_" + Digest.sha256Hex(link.joined(separator: "\u{0}")).prefix(16)
    }

    /// The triggers' names: `gallra_consent_guard_…_insert` and `…_update`.
    public var triggerNames: (insert: String, update: String) {
        ("gallra_\(functionName)_insert", "gallra_\(functionName)_update")
    }

    /// The statements that install the guard (function, triggers, comments, privileges), in order.
    public var installStatements: [String] {
        let function = "gallra." + SQLIdentifier.quoted(functionName)
        let table = SQLIdentifier.quoted(schema: guarded.table.schema, name: guarded.table.name)
        let columns = guarded.columns.map { SQLIdentifier.quoted($0.name) }
        let key = SQLIdentifier.quoted(subject.key.name)
        // The function runs as its owner, whoever inserts. Where the key is read from the row, every name in it is
        // qualified (pg_catalog's operators and types, gallra's table), so it needs no pinned search_path, which
        // would cost a setting change on every call; a caller's search_path finds nothing in it to replace. The
        // lookup in the subject table compares columns of the shop's types, whose operators may live in another
        // schema: there the search_path is pinned to pg_catalog, pg_temp, as for the consent functions.
        let equals = guarded.keyIsLinked ? "OPERATOR(pg_catalog.=)" : "="
        let readKey: String
        let settings: String
        if guarded.keyIsLinked {
            readKey = "v_key := NEW.\(columns[0])::pg_catalog.text;"
            settings = ""
        } else {
            settings = " SET search_path = pg_catalog, pg_temp"
            let subjectTable = SQLIdentifier.quoted(schema: subject.table.schema, name: subject.table.name)
            let match = zip(guarded.subjectColumns, columns).map { "s.\(SQLIdentifier.quoted($0.name)) = NEW.\($1)" }
            readKey =
                "SELECT s.\(key)::text INTO v_key FROM \(subjectTable) AS s WHERE \(match.joined(separator: " AND "));"
        }
        let policyText = SQLText.literal(policy.rawValue)
        let registryText = SQLText.literal(registryTable)
        let tableText = SQLText.literal(guarded.table.description)
        let hint = SQLText.literal(
            "Record the subject's consent first, in the same transaction or before it: SELECT gallra.grant_consent("
                + "'\(registryTable)', key, '\(policy.rawValue)', source); or write no row for a subject who has not "
                + "consented.")
        let body = """
            DECLARE
                v_key pg_catalog.text;
            BEGIN
                \(readKey)
                IF v_key IS NULL THEN
                    RAISE EXCEPTION 'policy % collects data in % only with consent, and the row links to no subject in %',
                        \(policyText), \(tableText), \(registryText)
                        USING ERRCODE = 'GC009', HINT = \(hint);
                END IF;
                IF (SELECT e.event FROM gallra.consent_event AS e
                    WHERE e.subject_table \(equals) \(registryText) AND e.subject_key \(equals) v_key
                      AND e.policy \(equals) \(policyText)
                    ORDER BY e.ordinal DESC LIMIT 1) \(equals) 'granted'
                THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'policy % collects data in % only with consent, and subject % % has none in force',
                    \(policyText), \(tableText), \(registryText), v_key
                    USING ERRCODE = 'GC009', HINT = \(hint);
            END
            """
        var tag = "$guard$"
        while body.contains(tag) { tag = "$guard" + String(tag.count) + "$" }
        let present = columns.map { "NEW.\($0) IS NOT NULL" }.joined(separator: " AND ")
        let changed = columns.map { "NEW.\($0) IS DISTINCT FROM OLD.\($0)" }.joined(separator: " OR ")
        let (insert, update) = triggerNames
        let about =
            "gallra consent guard of policy \(policy.rawValue) (collect: with_consent): refuses rows of \(guarded.table.description) "
            + "whose subject has no consent in force. Installed and removed by gallra policy apply and disable."
        return [
            """
            CREATE FUNCTION \(function)() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER\(settings) AS \(tag)
            \(body)
            \(tag)
            """,
            "REVOKE ALL ON FUNCTION \(function)() FROM PUBLIC",
            "COMMENT ON FUNCTION \(function)() IS \(SQLText.literal(about))",
            """
            CREATE TRIGGER \(SQLIdentifier.quoted(insert)) BEFORE INSERT ON \(table)
                FOR EACH ROW WHEN (\(present)) EXECUTE FUNCTION \(function)()
            """,
            """
            CREATE TRIGGER \(SQLIdentifier.quoted(update)) BEFORE UPDATE OF \(columns.joined(separator: ", ")) ON \(table)
                FOR EACH ROW WHEN (\(present) AND (\(changed))) EXECUTE FUNCTION \(function)()
            """,
            "COMMENT ON TRIGGER \(SQLIdentifier.quoted(insert)) ON \(table) IS \(SQLText.literal(about))",
            "COMMENT ON TRIGGER \(SQLIdentifier.quoted(update)) ON \(table) IS \(SQLText.literal(about))",
        ]
    }

    /// SHA-256 of the install statements: equal guards install equal SQL.
    public var digest: String { Digest.sha256Hex(installStatements.joined(separator: ";\n")) }
}

/// A consent guard as installed in the database (a row of `gallra.consent_guard`), and whether it is intact.
public struct InstalledConsentGuard: Sendable, Hashable {
    public var policy: String
    public var policyVersion: Int
    /// The trigger function's name in schema gallra.
    public var functionName: String
    /// The guarded table as SQL writes it, when installed.
    public var table: String
    public var columns: [String]
    /// Whether the function and both its triggers are in the database, on the table of that name (a dropped table
    /// takes its triggers along; a renamed one takes them to a table the policy no longer names).
    public var intact: Bool
    public var digest: String

    /// The guarded table and its linking columns, for people: `shop.newsletter_log (customer_ref)`.
    public var place: String { "\(table) (\(columns.joined(separator: ", ")))" }
}

/// Installs, replaces and removes consent guards (`gallra.consent_guard`).
public enum ConsentGuards {
    /// The strings of a JSON array of strings (`["customer_id"]`).
    static func strings(_ json: String) throws -> [String] {
        guard case .array(let items) = try JSONValue(parsing: json) else { return [] }
        return items.compactMap { if case .string(let text) = $0 { text } else { nil } }
    }

    /// How long installing or removing a guard waits for a lock on the shop's table before the apply gives up: the
    /// trigger DDL needs a lock that conflicts with the shop's writes, and waiting longer would queue them behind it.
    public static let lockTimeout = "5s"

    /// The guards installed for `policy`, or for every policy when nil, by policy and table; none in a database
    /// whose schema predates them.
    public static func installed(policy: String?, on connection: PostgresConnection) async throws
        -> [InstalledConsentGuard]
    {
        // A database migrated only up to an older schema has none (the store still writes policies there).
        let present = try await connection.query(
            "SELECT to_regclass('gallra.consent_guard') IS NOT NULL AS present")
        guard try present.first?.decode("present", as: Bool.self) == true else { return [] }
        let rows = try await connection.query(
            """
            SELECT g.policy, g.policy_version, g.function_name, g.guarded_table, pg_catalog.array_to_json(g.columns)::text AS columns, g.digest,
                   (p.oid IS NOT NULL AND (SELECT count(*) FROM pg_catalog.pg_trigger AS t
                                           WHERE t.tgfoid = p.oid AND NOT t.tgisinternal
                                             AND t.tgrelid = pg_catalog.to_regclass(g.guarded_table)
                                             AND t.tgname IN ('gallra_' || g.function_name || '_insert',
                                                              'gallra_' || g.function_name || '_update')) = 2) AS intact
            FROM gallra.consent_guard AS g
            LEFT JOIN pg_catalog.pg_proc AS p
              ON p.proname = g.function_name AND p.pronamespace = 'gallra'::regnamespace AND p.pronargs = 0
            WHERE $1::text IS NULL OR g.policy = $1
            ORDER BY g.policy, g.guarded_table
            """, [policy.map { .text($0) } ?? .null])
        return try rows.map { row in
            InstalledConsentGuard(
                policy: try row.decode("policy"), policyVersion: try row.decode("policy_version"),
                functionName: try row.decode("function_name"), table: try row.decode("guarded_table"),
                columns: try Self.strings(try row.decode("columns", as: String.self)), intact: try row.decode("intact"),
                digest: try row.decode("digest"))
        }
    }

    /// What ``reconcile(policy:version:wanted:on:)`` does to one policy's guards: a guard installed as wanted and
    /// intact stays; every other installed one is dropped; every wanted one not staying is installed.
    public static func changes(wanted: [ConsentGuard], installed: [InstalledConsentGuard]) -> (
        install: [ConsentGuard], drop: [InstalledConsentGuard]
    ) {
        let wantedByName = Dictionary(wanted.map { ($0.functionName, $0) }, uniquingKeysWith: { first, _ in first })
        var keep: Set<String> = []
        var drop: [InstalledConsentGuard] = []
        for guardRow in installed {
            if guardRow.intact, let want = wantedByName[guardRow.functionName], want.digest == guardRow.digest {
                keep.insert(guardRow.functionName)
            } else {
                drop.append(guardRow)
            }
        }
        return (wanted.filter { !keep.contains($0.functionName) }, drop)
    }

    /// Makes the guards of `policy` exactly `wanted`, inside the caller's transaction: a guard installed as wanted
    /// and intact stays; any other is dropped (its function, and with it its triggers); a missing one is installed.
    ///
    /// - Returns: whether anything was installed or dropped.
    /// - Throws: `PolicyStoreError` `.guardedTableBusy` when a guarded table stays locked longer than
    ///   ``lockTimeout``; `PostgresError` for anything else. The caller's transaction then rolls back.
    @discardableResult
    public static func reconcile(
        policy: PolicyName, version: Int, wanted: [ConsentGuard], on connection: isolated PostgresConnection
    ) async throws -> Bool {
        let (install, drop) = changes(
            wanted: wanted, installed: try await self.installed(policy: policy.rawValue, on: connection))
        guard !drop.isEmpty || !install.isEmpty else { return false }
        // The server's NOTICE that dropping a function drops its triggers says nothing the operator did not ask for.
        let before = try await connection.query(
            """
            SELECT current_setting('lock_timeout') AS lock_timeout, current_setting('client_min_messages') AS messages,
                   set_config('lock_timeout', $1, true), set_config('client_min_messages', 'warning', true)
            """, [.text(lockTimeout)])
        let lockTimeoutBefore = try before[0].decode("lock_timeout", as: String.self)
        let messagesBefore = try before[0].decode("messages", as: String.self)
        var table = ""
        do {
            for guardRow in drop {
                table = guardRow.table
                try await connection.execute(
                    "DROP FUNCTION IF EXISTS gallra.\(SQLIdentifier.quoted(guardRow.functionName))() CASCADE")
                try await connection.execute(
                    "DELETE FROM gallra.consent_guard WHERE function_name = $1", [.text(guardRow.functionName)])
            }
            for guardSpec in install {
                table = guardSpec.guarded.table.description
                for statement in guardSpec.installStatements { try await connection.execute(statement) }
                try await connection.execute(
                    """
                    INSERT INTO gallra.consent_guard (function_name, policy, policy_version, guarded_table, columns, digest)
                    VALUES ($1, $2, $3, $4, ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6)
                    """,
                    [
                        .text(guardSpec.functionName), .text(policy.rawValue), .int32(Int32(version)), .text(table),
                        .jsonb(Engine.jsonArray(guardSpec.guarded.columns.map(\.name))),
                        .text(guardSpec.digest),
                    ])
            }
        } catch let error as PostgresError where error.sqlState == .lockNotAvailable {
            throw PolicyStoreError(
                .guardedTableBusy, policy: policy.rawValue,
                "could not lock \(table) within \(lockTimeout) to install or remove the consent guard of policy \(policy.rawValue): a long transaction holds it; nothing was stored; try again when it has ended (pg_stat_activity shows it)"
            )
        }
        try await connection.execute(
            "SELECT set_config('lock_timeout', $1, true), set_config('client_min_messages', $2, true)",
            [.text(lockTimeoutBefore), .text(messagesBefore)])
        return true
    }
}
