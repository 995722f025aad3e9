import GallraCore
import GallraPolicy
import GallraPostgres

/// A register extract: everything the policies over a subject's table say is the subject's, read in one snapshot
/// and handed to an ``ExtractWriter`` as it is read.
///
/// Every active and draft policy over the table is validated against the live catalog, as `gallra plan` does; each
/// of its data points' paths is followed from the subject row. A table reached by several data points appears once,
/// its rows deduplicated by row identity (`tableoid`, `ctid`: within one snapshot, one row of a table or of one of
/// its partitions). Rows are read with a cursor, `fetchSize` at a time, so memory does not grow with them.
public enum SubjectExtract {
    /// Rows fetched from the cursor at a time.
    public static let defaultFetchSize = 1000

    /// Writes the extract of subject `key` of `table` to `writer`, in one `REPEATABLE READ READ ONLY` transaction.
    ///
    /// - Parameter digester: the audit key's digester, to find the subject in the audit trail; without one the
    ///   extract says that its processing history could not be read.
    /// - Returns: the subject as the audit trail names it (its table as the plan names it, its digest if a
    ///   digester was given), for recording the extract.
    public static func write(
        table: QualifiedName, key: String, digester: SubjectDigester?, fetchSize: Int = defaultFetchSize,
        on connection: PostgresConnection, to writer: some ExtractWriter
    ) async throws -> (subjectTable: String, subjectDigest: String?) {
        try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            try await read(
                table: table, key: key, digester: digester, fetchSize: max(fetchSize, 1), on: connection,
                to: writer)
        }
    }

    private static func read(
        table: QualifiedName, key: String, digester: SubjectDigester?, fetchSize: Int,
        on connection: isolated PostgresConnection, to writer: some ExtractWriter
    ) async throws -> (subjectTable: String, subjectDigest: String?) {
        // Text forms that do not depend on the session: times in UTC, dates in ISO order, floats exact.
        try await connection.query(
            """
            SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true),
                   set_config('IntervalStyle', 'postgres', true), set_config('extra_float_digits', '1', true)
            """)
        let runnable = try await RunnablePolicies.load(on: connection, names: [], includeDrafts: true)
        let policies = runnable.policies.filter { $0.resolved.subject.table == table }
            .sorted { $0.resolved.name < $1.resolved.name }
        guard let first = policies.first else { throw ExtractError.noPolicy(table: table.description) }
        let catalog = try await CatalogReader.read(on: connection)
        let subject = first.resolved.subject
        let subjectTable = subject.table.description
        try SQLText.checkTypeName(subject.keyType)
        let keyCondition = "s.\(SQLIdentifier.quoted(subject.key.name)) = $1::\(subject.keyType)"
        let subjectFrom = "\(SQLIdentifier.quoted(schema: subject.table.schema, name: subject.table.name)) AS s"

        let found: PostgresResult
        do {
            found = try await connection.query(
                """
                SELECT s.\(SQLIdentifier.quoted(subject.key.name))::text AS key, now() AS taken_at
                FROM \(subjectFrom) WHERE \(keyCondition)
                """, [.text(key)])
        } catch let error as PostgresError where error.sqlState?.errorClass == .dataException {
            throw ExtractError.noSubject(table: subjectTable, keyType: subject.keyType, malformed: true)
        }
        guard let row = found.first else {
            throw ExtractError.noSubject(table: subjectTable, keyType: subject.keyType, malformed: false)
        }
        let canonicalKey = try row.decode("key", as: String.self)
        let takenAt = try row.decode("taken_at", as: PostgresTimestamp.self)

        // The tables in order of first mention: the subject table, then each policy's data points in apply order.
        var plans: [TablePlan] = []
        var positions: [QualifiedName: Int] = [:]
        func add(_ table: QualifiedName, path: [JoinHop], policy: String) {
            let position =
                positions[table]
                ?? {
                    plans.append(TablePlan(table: table))
                    positions[table] = plans.count - 1
                    return plans.count - 1
                }()
            if !plans[position].paths.contains(path) { plans[position].paths.append(path) }
            if !plans[position].policies.contains(policy) { plans[position].policies.append(policy) }
        }
        var described: [ExtractPolicy] = []
        for policy in policies {
            let resolved = policy.resolved
            add(subject.table, path: [], policy: resolved.name.rawValue)
            var tables = [subject.table]
            for step in resolved.steps {
                add(step.table, path: step.path, policy: resolved.name.rawValue)
                if !tables.contains(step.table) { tables.append(step.table) }
            }
            let standing = try await standing(
                of: canonicalKey, under: resolved, at: takenAt, on: connection)
            let why = try await Engine.standing(
                of: canonicalKey, under: policy, asOf: takenAt, rows: false, on: connection)
            described.append(
                ExtractPolicy(
                    name: resolved.name.rawValue, version: policy.version, state: policy.state,
                    description: resolved.policy.description, purpose: resolved.policy.purpose,
                    legalBasis: resolved.policy.legalBasis, rule: resolved.rule.rendered,
                    tables: tables.map(\.description), standing: standing, why: why))
        }

        let consent = try await consentEvents(
            policies: policies.map(\.resolved.name.rawValue), key: canonicalKey, on: connection)
        let digest = digester?.digest(table: subjectTable, key: canonicalKey)
        let history: ExtractHistory
        if let digest {
            history = .found(
                subjectDigest: digest, records: try await AuditTrail.lookup(digest: digest, on: connection),
                exports: try await AuditExports.lookup(digest: digest, on: connection))
        } else {
            history = .noAuditKey
        }
        try writer.begin(
            ExtractHeader(
                takenAtMicroseconds: takenAt.microsecondsSince2000 + AuditTrail.postgresEpochOffset,
                database: connection.database, subjectTable: subjectTable, keyColumn: subject.key.name,
                key: canonicalKey, policies: described,
                uncheckedPolicies: try await uncheckedPolicies(runnable.invalid, over: table, on: connection),
                consent: consent, history: history))

        for plan in plans {
            guard let catalogTable = catalog.tables[plan.table] else {
                throw PostgresError(.decoding, "table \(plan.table.description) is not in the catalog it was read from")
            }
            let columns = catalogTable.columns
            try writer.beginTable(
                ExtractTable(
                    name: plan.table.description,
                    columns: columns.map { ExtractColumn(name: $0.name, type: $0.type, baseType: $0.baseType) },
                    policies: plan.policies))
            let sql = try rowsQuery(
                plan, columns: columns, primaryKey: catalogTable.primaryKey, subjectFrom: subjectFrom,
                keyCondition: keyCondition)
            try await connection.execute("DECLARE gallra_extract NO SCROLL CURSOR FOR \(sql)", [.text(canonicalKey)])
            var count = 0
            while true {
                let chunk = try await connection.query("FETCH FORWARD \(fetchSize) FROM gallra_extract")
                if chunk.isEmpty { break }
                try writer.rows(try chunk.map { try $0.decode("row", as: String.self) })
                count += chunk.count
                if chunk.count < fetchSize { break }
            }
            try await connection.execute("CLOSE gallra_extract")
            try writer.endTable(rowCount: count)
        }
        try writer.finish()
        return (subjectTable, digest)
    }

    /// One table of the extract: the paths that reach it from the subject row, and the policies they come from.
    struct TablePlan {
        var table: QualifiedName
        var paths: [[JoinHop]] = []
        var policies: [String] = []
    }

    /// The table's rows reached by any of the plan's paths from the subject row (`$1` its key), each once, as JSON
    /// objects in column order, ordered by primary key (else by row identity).
    static func rowsQuery(
        _ plan: TablePlan, columns: [CatalogColumn], primaryKey: [String]?, subjectFrom: String, keyCondition: String
    ) throws -> String {
        let reached = plan.paths.map { path in
            guard !path.isEmpty else {
                return "SELECT s.tableoid, s.ctid FROM \(subjectFrom) WHERE \(keyCondition)"
            }
            let joined = SQLPath(path, from: "s", prefix: "p")
            return
                "SELECT \(joined.last).tableoid, \(joined.last).ctid FROM \(subjectFrom), \(joined.from) "
                + "WHERE \(joined.conditions(and: [keyCondition]))"
        }
        var values: [String] = []
        for column in columns {
            try SQLText.checkIdentifier(column.name)
            let name = SQLIdentifier.quoted(column.name)
            values.append("\(value(of: "r.\(name)", baseType: column.baseType)) AS \(name)")
        }
        let order =
            primaryKey.map { $0.map { "r.\(SQLIdentifier.quoted($0))" }.joined(separator: ", ") }
            ?? "r.tableoid, r.ctid"
        return """
            SELECT (SELECT row_to_json(x) FROM (SELECT \(values.joined(separator: ", "))) AS x)::text AS row
            FROM \(SQLIdentifier.quoted(schema: plan.table.schema, name: plan.table.name)) AS r
            WHERE (r.tableoid, r.ctid) IN (\(reached.joined(separator: " UNION ")))
            ORDER BY \(order)
            """
    }

    /// The value of one column as the extract's JSON holds it. `row_to_json` writes numbers, booleans, json and
    /// timestamps with zone (RFC 3339, in the session's UTC) as JSON; bytea goes as base64 and the rest as text.
    static func value(of column: String, baseType: String) -> String {
        switch baseType {
        case "int2", "int4", "int8", "float4", "float8", "numeric", "bool", "timestamptz", "json", "jsonb":
            column
        case "bytea":
            "translate(encode(\(column), 'base64'), E'\\n', '')"
        default:
            "\(column)::text"
        }
    }

    /// The invalid policies that may be over `table`: those naming it (with or without a schema) as their subject
    /// table, and those whose stored document cannot be read at all.
    static func uncheckedPolicies(
        _ invalid: [(name: String, reason: String)], over table: QualifiedName,
        on connection: isolated PostgresConnection
    ) async throws -> [UncheckedPolicy] {
        guard !invalid.isEmpty else { return [] }
        let stored = try await PolicyStore(connection: connection).loadAll()
        let subjects = Dictionary(
            stored.policies.map { ($0.stored.name, $0.policy.subject.table) }, uniquingKeysWith: { first, _ in first })
        return invalid.filter { policy in
            guard let subject = subjects[policy.name] else { return true }
            return subject.name == table.name && (subject.schema == nil || subject.schema == table.schema)
        }.map { UncheckedPolicy(name: $0.name, reason: $0.reason) }
    }

    /// Where subject `key` stands under `policy` at `instant`, by the planner's own rule, exemptions and processed
    /// check: the same predicates a run picks its subjects by.
    static func standing(
        of key: String, under policy: ResolvedPolicy, at instant: PostgresTimestamp,
        on connection: isolated PostgresConnection
    ) async throws -> ExtractPolicy.Standing {
        let statement = try Planner(policy).subjectStanding(key: key)
        let rows = try await connection.query(
            statement.sql,
            Engine.values(statement, Engine.Bindings(asOf: instant, policyName: policy.name.rawValue)))
        guard let row = rows.first else { return .notDue }
        if try row.decode("processed", as: Bool.self) { return .processed }
        guard try row.decode("rule_holds", as: Bool.self) else { return .notDue }
        if try row.decode("exempted", as: Bool.self) { return .exempt }
        return try row.decode("held", as: Bool.self) ? .held : .due
    }

    /// The subject's consent events under `policies`, in the order recorded. Read from the registry's table
    /// rather than `gallra.consent_history`, which locks the subject row and so cannot run in a read-only snapshot.
    static func consentEvents(
        policies: [String], key: String, on connection: isolated PostgresConnection
    ) async throws -> [ConsentEvent] {
        let rows = try await connection.query(
            """
            SELECT e.event, e.policy::text AS policy, e.policy_version, e.recorded_at, e.source, e.evidence,
                   e.recorded_by
            FROM gallra.consent_event AS e
            JOIN gallra.policy_latest AS l
              ON l.name = e.policy AND e.subject_table = l.definition->'subject'->>'table'
            WHERE e.policy IN (SELECT jsonb_array_elements_text($1::jsonb)) AND e.subject_key = $2
            ORDER BY e.id
            """, [.jsonb(JSONValue.array(policies.map(JSONValue.string)).canonicalText), .text(key)])
        return try rows.map { try ConsentEvent(row: $0, policyColumn: "policy") }
    }
}

/// Why an extract cannot be made.
public enum ExtractError: Error, Sendable, ExitStatusProviding {
    /// No active or draft policy has its subjects in the table: nothing says where the subject's data is.
    case noPolicy(table: String)
    /// No row of the table has the key (or the key is not a value of the key's type).
    case noSubject(table: String, keyType: String, malformed: Bool)

    public var exitStatus: ExitStatus {
        switch self {
        case .noPolicy: .dataError
        case .noSubject: .noInput
        }
    }

    public var description: String {
        switch self {
        case .noPolicy(let table):
            "no active or draft policy has its subjects in \(table): an extract follows the data points of the "
                + "policies over the subject's table. gallra policy list shows the stored policies and their subjects."
        case .noSubject(let table, let keyType, let malformed):
            malformed
                ? "no subject of \(table) has that key: it is not a valid \(keyType). Give the key as the table "
                    + "stores it."
                : "no subject of \(table) has that key. Check the key (the subject table's key column, as the "
                    + "policies name it)."
        }
    }
}
