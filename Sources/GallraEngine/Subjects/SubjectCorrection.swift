import GallraCore
import GallraPolicy
import GallraPostgres

/// One value a subject says is wrong: a column of a table of their data and what it should hold.
public struct CorrectionChange: Sendable, Hashable {
    /// The table, schema-qualified or as the policies name it (resolved through the search path).
    public var table: QualifiedName
    public var column: ColumnName
    /// The new value's text, cast by the server to the column's type.
    public var value: String

    public init(table: QualifiedName, column: ColumnName, value: String) {
        self.table = table
        self.column = column
        self.value = value
    }
}

/// What a correction changes: per table, the subject's rows whose values differ from the new ones, with their old
/// and new values. Made by ``SubjectCorrection/plan(subject:changes:on:)``, carried out by
/// ``SubjectCorrection/apply(_:subjectDigest:osUser:on:)``.
public struct CorrectionPlan: Sendable {
    /// One table's rows.
    public struct Table: Sendable, Hashable {
        /// The table, schema-qualified.
        public var table: String
        /// The columns that identify a row (the primary key, else `ctid`).
        public var identityColumns: [String]
        /// The columns set.
        public var columns: [String]
        public var rows: [Row]
    }

    /// One row: its identity, and per column its value now and the value it gets (as text; nil is NULL).
    public struct Row: Sendable, Hashable {
        public var identity: [String?]
        public var old: [String?]
        public var new: [String?]
    }

    /// The subject table as the policies' plans name it (schema-qualified): the table of the audit digest.
    public var subjectTable: String
    /// The subject's key as PostgreSQL prints it.
    public var key: String
    public var tables: [Table]
    /// The statements' inputs, to find the same rows again when applying.
    var targets: [CorrectionTarget]
    var policy: ResolvedPolicy

    /// Rows the correction changes, over all tables.
    public var rowCount: Int { tables.reduce(0) { $0 + $1.rows.count } }

    /// What the audit event records: per table its columns and the number of rows changed, never a value.
    public var auditDetail: String {
        JSONValue.object([
            "tables": .array(
                tables.map { table in
                    .object([
                        "table": .string(table.table), "columns": .array(table.columns.map(JSONValue.string)),
                        "rows": .number(String(table.rows.count)),
                    ])
                })
        ]).canonicalText
    }
}

/// Why a correction cannot be made. Descriptions name tables and columns, never a key or a value.
public struct CorrectionError: Error, Sendable, Hashable, ExitStatusProviding {
    public enum Code: String, Sendable, Hashable {
        /// No active or draft policy has its subjects in the subject's table.
        case noPolicy
        /// The table is not the subject table nor a data point of a policy over it.
        case tableNotMapped
        /// The table or the column does not exist.
        case unknownColumn
        /// A column of the row's key, of the link to the subject, or a generated column.
        case columnNotCorrectable
        /// The same column is set twice.
        case duplicateColumn
        /// A row the subject points to that something else points to as well.
        case sharedRow
        /// The server refused a value (type, length, constraint); nothing changed.
        case valueRefused
        /// The rows changed between showing them and applying the correction.
        case changedMeanwhile
        /// Another session held the rows longer than the correction waits.
        case rowsLocked
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var exitStatus: ExitStatus {
        code == .changedMeanwhile || code == .rowsLocked ? .temporaryFailure : .dataError
    }
    public var description: String { message }
}

/// A correction of one subject's data (GDPR Art. 16): values set in the subject's rows of tables the stored
/// policies map to the subject, in one transaction, recorded in the audit trail as an event of kind `correction`.
///
/// The tables a correction may change are the subject table and the tables of the data points of the active and
/// draft policies over it; their rows are the ones the policies' paths reach from the subject, as a run or an
/// extract reaches them. The columns of a row's primary key and those that link a row to the subject (the joining
/// columns of every path) cannot be set: a correction never moves rows to another subject. A row the subject points
/// to (an address) that something else also points to is not the subject's alone, and is not changed.
public enum SubjectCorrection {
    /// Reads what setting `changes` would do to `subject`'s rows, in one `REPEATABLE READ READ ONLY` transaction.
    ///
    /// - Throws: ``CorrectionError`` (exit 65): a table or column that may not be corrected, a shared row, a value
    ///   not of its column's type.
    public static func plan(
        subject: FoundSubject, changes: [CorrectionChange], on connection: PostgresConnection
    ) async throws -> CorrectionPlan {
        try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            let runnable = try await RunnablePolicies.load(on: connection, names: [], includeDrafts: true)
            let policies = runnable.policies.map(\.resolved).filter { $0.subject.table == subject.table }
                .sorted { $0.name < $1.name }
            guard let first = policies.first else {
                throw CorrectionError(
                    .noPolicy,
                    "no active or draft policy has its subjects in \(subject.table): a correction changes only the "
                        + "tables the policies map to a subject. gallra policy list shows the stored policies.")
            }
            let catalog = try await CatalogReader.read(on: connection)
            let targets = try await targets(
                for: changes, subjectTable: subject.table, policies: policies, catalog: catalog, on: connection)
            let planner = try Planner(first)
            var tables: [CorrectionPlan.Table] = []
            for target in targets {
                let rows = try await rows(target, planner: planner, key: subject.key, lock: false, on: connection)
                let shared = rows.filter(\.shared).count
                guard shared == 0 else {
                    throw CorrectionError(
                        .sharedRow,
                        "\(shared) of the subject's rows of \(target.table) "
                            + "\(shared == 1 ? "is" : "are") also used by another subject or by rows that are no "
                            + "subject's (a store, another customer): not the subject's alone, so a correction of "
                            + "this subject does not change \(shared == 1 ? "it" : "them"). Nothing was changed. "
                            + "Change such a row in the application, or leave \(target.table) out.")
                }
                tables.append(
                    CorrectionPlan.Table(
                        table: target.table.description, identityColumns: target.identityColumns,
                        columns: target.columns.map(\.name.name), rows: rows.map(\.row)))
            }
            return CorrectionPlan(
                subjectTable: first.subject.table.description, key: subject.key, tables: tables, targets: targets,
                policy: first)
        }
    }

    /// Makes the changes of `plan` in one transaction, with their audit event: the rows are locked and read again,
    /// and must be exactly those shown (else nothing changes and ``CorrectionError/Code/changedMeanwhile``, exit 75).
    ///
    /// - Parameter subjectDigest: the subject's digest under the audit key; nil without a key.
    /// - Returns: the audit event recorded.
    /// - Throws: ``CorrectionError`` `.valueRefused` (exit 65) when the server refuses a value (a constraint, a
    ///   length): nothing changed.
    @discardableResult
    public static func apply(
        _ plan: CorrectionPlan, subjectDigest: String?, osUser: String, on connection: PostgresConnection
    ) async throws -> AuditEvent {
        let planner = try Planner(plan.policy)
        return try await connection.transaction { connection in
            try await connection.execute("SET LOCAL lock_timeout = '5s'")
            try await connection.execute("SET LOCAL statement_timeout = '60s'")
            for (target, shown) in zip(plan.targets, plan.tables) {
                let rows = try await rows(target, planner: planner, key: plan.key, lock: true, on: connection)
                guard rows.map(\.row) == shown.rows, !rows.contains(where: \.shared) else {
                    throw changedMeanwhile(target.table)
                }
            }
            for (target, shown) in zip(plan.targets, plan.tables) where !shown.rows.isEmpty {
                let statement = try planner.correctionUpdate(target)
                let changed: PostgresResult
                do {
                    changed = try await connection.query(statement.sql, values(statement, key: plan.key))
                } catch {
                    throw refusal(error, target)
                }
                guard changed.count == shown.rows.count else { throw changedMeanwhile(target.table) }
            }
            return try await AuditEvents.append(
                .correction, subjectTable: plan.subjectTable, subjectDigest: subjectDigest, detail: plan.auditDetail,
                osUser: osUser, inTransactionOn: connection)
        }
    }

    // MARK: - Tables and columns

    /// Each table of `changes` with its paths and columns, in the order first named; checks that the table is mapped
    /// to the subject and each column may be set.
    static func targets(
        for changes: [CorrectionChange], subjectTable: QualifiedName, policies: [ResolvedPolicy], catalog: Catalog,
        on connection: isolated PostgresConnection
    ) async throws -> [CorrectionTarget] {
        // Every table the policies map to the subject, with its paths; and the subject's own rows per table.
        var paths: [QualifiedName: [[JoinHop]]] = [subjectTable: [[]]]
        var order: [QualifiedName] = [subjectTable]
        var own: [QualifiedName: [[JoinHop]]] = [subjectTable: [[]]]
        var referencedBy: [QualifiedName: [ForeignKeyReference]] = [:]
        for policy in policies {
            for step in policy.steps {
                if paths[step.table] == nil { order.append(step.table) }
                if !(paths[step.table] ?? []).contains(step.path) { paths[step.table, default: []].append(step.path) }
                if step.relation == .referenced {
                    for reference in step.referencedBy where !(referencedBy[step.table] ?? []).contains(reference) {
                        referencedBy[step.table, default: []].append(reference)
                    }
                } else if !(own[step.table] ?? []).contains(step.path) {
                    own[step.table, default: []].append(step.path)
                }
            }
        }
        // The columns that link rows to the subject, per table: every joining column of every path.
        var links: [QualifiedName: Set<String>] = [subjectTable: [policies[0].subject.key.name]]
        for path in paths.values.flatMap({ $0 }) {
            for hop in path {
                links[hop.from, default: []].formUnion(hop.fromColumns.map(\.name))
                links[hop.to, default: []].formUnion(hop.toColumns.map(\.name))
            }
        }

        var targets: [CorrectionTarget] = []
        for change in changes {
            guard let catalogTable = catalog.table(change.table) else {
                throw CorrectionError(
                    .tableNotMapped,
                    "--set \(change.table).\(change.column): there is no table \(change.table) in the database. "
                        + "The tables a correction of a subject of \(subjectTable) may change: "
                        + "\(order.map(\.description).joined(separator: ", ")).")
            }
            let table = catalogTable.name
            guard let tablePaths = paths[table] else {
                throw CorrectionError(
                    .tableNotMapped,
                    "--set \(change.table).\(change.column): \(table) is not a table the policies over "
                        + "\(subjectTable) map to its subjects, so no row of it is known to be the subject's. The "
                        + "tables a correction may change: \(order.map(\.description).joined(separator: ", ")).")
            }
            guard let catalogColumn = catalogTable.column(change.column.name) else {
                throw CorrectionError(
                    .unknownColumn,
                    "--set: \(table) has no column \(change.column) (its columns: "
                        + "\(catalogTable.columns.map { ColumnName($0.name).description }.joined(separator: ", "))).")
            }
            let primaryKey = catalogTable.primaryKey ?? []
            if primaryKey.contains(change.column.name) {
                throw CorrectionError(
                    .columnNotCorrectable,
                    "--set \(table).\(change.column): \(change.column) is part of the key of \(table)'s rows; a "
                        + "correction changes values, not which row is which. Correct the other columns.")
            }
            if links[table, default: []].contains(change.column.name) {
                throw CorrectionError(
                    .columnNotCorrectable,
                    "--set \(table).\(change.column): \(change.column) links \(table)'s rows to the subject (a "
                        + "policy's path joins on it); setting it would move rows to another subject. A correction "
                        + "changes only the subject's values.")
            }
            if catalogColumn.isGenerated {
                throw CorrectionError(
                    .columnNotCorrectable,
                    "--set \(table).\(change.column): \(change.column) is a generated column; the server computes it. "
                        + "Correct the columns it is computed from.")
            }
            let type = try await columnType(table: table, column: change.column, on: connection)
            let column = CorrectionTarget.Column(name: change.column, type: type, value: change.value)
            if let index = targets.firstIndex(where: { $0.table == table }) {
                guard !targets[index].columns.contains(where: { $0.name == change.column }) else {
                    throw CorrectionError(
                        .duplicateColumn, "--set names \(table).\(change.column) twice; give each column once.")
                }
                targets[index].columns.append(column)
            } else {
                targets.append(
                    CorrectionTarget(
                        table: table, paths: tablePaths, columns: [column],
                        primaryKey: catalogTable.primaryKey.map { $0.map { ColumnName($0) } },
                        referencedBy: referencedBy[table] ?? [], ownPaths: own))
            }
        }
        return targets
    }

    /// The column's type without its modifier, checked before it is written into a cast.
    static func columnType(
        table: QualifiedName, column: ColumnName, on connection: isolated PostgresConnection
    ) async throws -> String {
        let rows = try await connection.query(
            """
            SELECT format_type(a.atttypid, NULL) AS type FROM pg_attribute AS a
            WHERE a.attrelid = $1::text::regclass AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
            """, [.text(SQLIdentifier.quoted(schema: table.schema, name: table.name)), .text(column.name)])
        guard let type = try rows.first?.decode("type", as: String.self) else {
            throw CorrectionError(.unknownColumn, "--set: \(table) has no column \(column)")
        }
        do {
            try SQLText.checkTypeName(type)
        } catch {
            throw CorrectionError(.columnNotCorrectable, "--set \(table).\(column): \(error.description)")
        }
        return type
    }

    // MARK: - Rows

    /// The subject's rows of `target` that the correction changes, with whether each is shared.
    static func rows(
        _ target: CorrectionTarget, planner: Planner, key: String, lock: Bool,
        on connection: isolated PostgresConnection
    ) async throws -> [(row: CorrectionPlan.Row, shared: Bool)] {
        let statement = try planner.correctionRows(target, lock: lock)
        let result: PostgresResult
        do {
            result = try await connection.query(statement.sql, values(statement, key: key))
        } catch {
            throw refusal(error, target)
        }
        return try result.map { row in
            let identity = try target.identityColumns.indices.map { try row.decode("key_\($0)", as: String?.self) }
            let old = try target.columns.indices.map { try row.decode("old_\($0)", as: String?.self) }
            let new = try target.columns.indices.map { try row.decode("new_\($0)", as: String?.self) }
            return (
                CorrectionPlan.Row(identity: identity, old: old, new: new), try row.decode("shared", as: Bool.self)
            )
        }
    }

    /// The values of a correction statement's parameters: the subject's key and the new values.
    static func values(_ statement: PlannedStatement, key: String) -> [PostgresValue] {
        Engine.values(
            statement,
            Engine.Bindings(
                asOf: PostgresTimestamp(microsecondsSince2000: 0), policyName: "",
                keys: Engine.keyArray([key])))
    }

    /// The server's refusal of a value (a type, a length, a constraint) as a ``CorrectionError`` that names the
    /// SQLSTATE and the table, without the parts of the server's message that could quote the value; a lock held too
    /// long as ``CorrectionError/Code/rowsLocked``; any other error as it is.
    static func refusal(_ error: any Error, _ target: CorrectionTarget) -> any Error {
        if let error = error as? PostgresError, error.isLockNotAvailable || error.isQueryCanceled {
            return CorrectionError(
                .rowsLocked,
                "another session holds the subject's rows of \(target.table) (\(error.sqlState?.rawValue ?? "timeout")); "
                    + "nothing was changed. Run the correction again in a moment.")
        }
        guard let error = error as? PostgresError,
            error.sqlState?.errorClass == .dataException
                || error.sqlState?.errorClass == .integrityConstraintViolation
        else { return error }
        let columns = target.columns.map(\.name.description).joined(separator: ", ")
        return CorrectionError(
            .valueRefused,
            "the server refused a new value for \(target.table) (\(columns)): SQLSTATE "
                + "\(error.sqlState?.rawValue ?? "")\(sqlStateName(error.sqlState).map { " \($0)" } ?? ""): "
                + "\(error.description). Nothing was changed; give a value the column takes.")
    }

    /// The condition names of the SQLSTATEs a value can meet (PostgreSQL's Appendix A).
    static func sqlStateName(_ state: SQLState?) -> String? {
        switch state?.rawValue {
        case "22001": "string_data_right_truncation"
        case "22003": "numeric_value_out_of_range"
        case "22007": "invalid_datetime_format"
        case "22008": "datetime_field_overflow"
        case "22P02": "invalid_text_representation"
        case "22023": "invalid_parameter_value"
        case "22021": "character_not_in_repertoire"
        case "23502": "not_null_violation"
        case "23503": "foreign_key_violation"
        case "23505": "unique_violation"
        case "23514": "check_violation"
        case "23P01": "exclusion_violation"
        default: nil
        }
    }

    static func changedMeanwhile(_ table: QualifiedName) -> CorrectionError {
        CorrectionError(
            .changedMeanwhile,
            "the subject's rows of \(table) changed since they were shown; nothing was changed. Run the correction "
                + "again to see them as they are now.")
    }
}
