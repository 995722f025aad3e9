import GallraCore
import GallraPolicy

/// One table of a correction: the rows of one subject the policies' paths reach in it, and the columns set.
public struct CorrectionTarget: Sendable, Hashable {
    /// One column set to one value, cast by the server from text to `type`.
    public struct Column: Sendable, Hashable {
        public var name: ColumnName
        /// The column's type without its modifier (`character varying`, not `character varying(200)`): the
        /// assignment then checks the length or precision, where a cast would cut or round the value.
        public var type: String
        /// The new value's text.
        public var value: String

        public init(name: ColumnName, type: String, value: String) {
            self.name = name
            self.type = type
            self.value = value
        }
    }

    /// The table, schema-qualified.
    public var table: QualifiedName
    /// Every path from the subject row to the table in the policies over the subject table (`[]`: the subject row).
    public var paths: [[JoinHop]]
    public var columns: [Column]
    /// The primary key, which identifies each row; nil when the table has none (rows are then named by `ctid`).
    public var primaryKey: [ColumnName]?
    /// For rows the subject points to, the foreign keys that reference them: a row referenced through one of them
    /// by a row that is not the subject's own is shared. Empty for the subject row and rows it owns.
    public var referencedBy: [ForeignKeyReference]
    /// The paths to the subject's own rows (its row and the rows it owns), per table: a reference from one of these
    /// does not share a row.
    public var ownPaths: [QualifiedName: [[JoinHop]]]

    public init(
        table: QualifiedName, paths: [[JoinHop]], columns: [Column], primaryKey: [ColumnName]?,
        referencedBy: [ForeignKeyReference], ownPaths: [QualifiedName: [[JoinHop]]]
    ) {
        self.table = table
        self.paths = paths
        self.columns = columns
        self.primaryKey = primaryKey
        self.referencedBy = referencedBy
        self.ownPaths = ownPaths
    }

    /// The columns that name a row in the output: the primary key's, else `ctid`.
    public var identityColumns: [String] { primaryKey?.map(\.name) ?? ["ctid"] }
}

/// The SQL of a correction (`gallra correct`): one subject's rows of a table, found along the policies' paths
/// exactly as a run reaches them, with `$keys` holding the one subject's key.
extension Planner {
    /// The rows of `target` the correction changes, in primary-key order: `key_0`, `key_1`, ... (the row's
    /// identity as text), `old_0`, ... (the columns' values as text), `new_0`, ... (the new values as the server
    /// reads them, as text) and `shared` (the row is one the subject points to, and something else points to it
    /// too). Rows that already hold the new values are left out. `lock` locks the rows (`FOR NO KEY UPDATE`) for
    /// the update that follows in the same transaction. A new value that is not of its column's type fails here,
    /// with the server's error.
    public func correctionRows(_ target: CorrectionTarget, lock: Bool) throws(PlanError) -> PlannedStatement {
        var sql = SQLBuilder()
        let reached = try reachedRows(&sql, target)
        let values = try newValues(&sql, target)
        var columns: [String] = []
        for (index, column) in target.identityColumns.enumerated() {
            try SQLText.checkIdentifier(column)
            columns.append("r.\(SQLIdentifier.quoted(column))::text AS key_\(index)")
        }
        for (index, column) in target.columns.enumerated() {
            columns.append("r.\(SQLIdentifier.quoted(column.name.name))::text AS old_\(index)")
        }
        for (index, value) in values.enumerated() {
            columns.append("(\(value))::text AS new_\(index)")
        }
        columns.append("\(sharedOutside(&sql, target, row: "r")) AS shared")
        let order = target.identityColumns.map { "r.\(SQLIdentifier.quoted($0))" }.joined(separator: ", ")
        let text = """
            SELECT \(columns.joined(separator: ", "))
            FROM \(SQLIdentifier.quoted(schema: target.table.schema, name: target.table.name)) AS r
            WHERE \(reached) AND \(differs(target, values, row: "r"))
            ORDER BY \(order)\(lock ? "\nFOR NO KEY UPDATE OF r" : "")
            """
        return sql.statement(text)
    }

    /// Sets the columns of the rows ``correctionRows(_:lock:)`` returns, returning `key_0`, ... per row changed.
    public func correctionUpdate(_ target: CorrectionTarget) throws(PlanError) -> PlannedStatement {
        var sql = SQLBuilder()
        let reached = try reachedRows(&sql, target)
        let values = try newValues(&sql, target)
        let assignments = zip(target.columns, values).map { "\(SQLIdentifier.quoted($0.name.name)) = \($1)" }
        let returning = target.identityColumns.enumerated().map {
            "r.\(SQLIdentifier.quoted($1))::text AS key_\($0)"
        }
        let text = """
            UPDATE \(SQLIdentifier.quoted(schema: target.table.schema, name: target.table.name)) AS r
            SET \(assignments.joined(separator: ", "))
            WHERE \(reached) AND \(differs(target, values, row: "r"))
            RETURNING \(returning.joined(separator: ", "))
            """
        return sql.statement(text)
    }

    /// `(r.tableoid, r.ctid) IN (...)`: the row is reached from the subject along one of the target's paths (the
    /// planner's own joins, from the subjects in `$keys`).
    func reachedRows(_ sql: inout SQLBuilder, _ target: CorrectionTarget) throws(PlanError) -> String {
        for name in Self.names(in: target) { try SQLText.checkIdentifier(name) }
        let selects = target.paths.map { path -> String in
            let reached = batchPath(&sql, path, lastAlias: "x", bound: false)
            let row = path.isEmpty ? "s" : "x"
            return "SELECT \(row).tableoid, \(row).ctid FROM \(reached.items.joined(separator: ", ")) "
                + "WHERE \(reached.conditions.joined(separator: " AND "))"
        }
        return "(r.tableoid, r.ctid) IN (\(selects.joined(separator: " UNION ")))"
    }

    /// Each column's new value: its text bound and cast by the server to the column's type.
    func newValues(_ sql: inout SQLBuilder, _ target: CorrectionTarget) throws(PlanError) -> [String] {
        var values: [String] = []
        for column in target.columns {
            try SQLText.checkTypeName(column.type)
            values.append("\(sql.bind(.text(column.value)))::text::\(column.type)")
        }
        return values
    }

    /// Whether row `row` holds something else than the new values, compared as text: every type has a text form,
    /// not every type an equality.
    func differs(_ target: CorrectionTarget, _ values: [String], row: String) -> String {
        let old = target.columns.map { "\(row).\(SQLIdentifier.quoted($0.name.name))::text" }
        let new = values.map { "(\($0))::text" }
        return "ROW(\(old.joined(separator: ", "))) IS DISTINCT FROM ROW(\(new.joined(separator: ", ")))"
    }

    /// Whether row `row` of a table the subject points to is also referenced by a row that is not the subject's own
    /// (another subject's row, a row another subject owns, a row no policy maps to a subject such as a store): then
    /// it is not the subject's alone. `false` for the subject row and rows it owns, also when reached as a row it
    /// points to.
    func sharedOutside(_ sql: inout SQLBuilder, _ target: CorrectionTarget, row: String) -> String {
        guard !target.referencedBy.isEmpty else { return "false" }
        let parts = target.referencedBy.enumerated().map { number, reference -> String in
            let other = "o\(number + 1)"
            let joins = zip(reference.columns, reference.referencedColumns).map {
                "\(other).\(SQLIdentifier.quoted($0.name)) = \(row).\(SQLIdentifier.quoted($1.name))"
            }
            let own = (target.ownPaths[reference.table] ?? []).map {
                reachedCondition(&sql, $0, row: other, set: .batch)
            }
            let outside = own.isEmpty ? "" : " AND NOT (" + own.joined(separator: " OR ") + ")"
            let table = SQLIdentifier.quoted(schema: reference.table.schema, name: reference.table.name)
            return "EXISTS (SELECT FROM \(table) AS \(other) WHERE \(joins.joined(separator: " AND "))\(outside))"
        }
        // A row also reached along a path to the subject's own rows (a customer who refers another customer) is
        // the subject's, whoever else points to it.
        let own = (target.ownPaths[target.table] ?? []).map { reachedCondition(&sql, $0, row: row, set: .batch) }
        let shared = "(" + parts.joined(separator: " OR ") + ")"
        return own.isEmpty ? shared : "(NOT (\(own.joined(separator: " OR "))) AND \(shared))"
    }

    static func names(in target: CorrectionTarget) -> [String] {
        var names = [target.table.name] + (target.table.schema.map { [$0] } ?? [])
        names += target.columns.map(\.name.name) + (target.primaryKey ?? []).map(\.name)
        for path in target.paths + target.ownPaths.values.flatMap({ $0 }) {
            for hop in path {
                names += [hop.from.name, hop.to.name] + [hop.from.schema, hop.to.schema].compactMap { $0 }
                names += hop.fromColumns.map(\.name) + hop.toColumns.map(\.name)
            }
        }
        for reference in target.referencedBy {
            names += [reference.table.name] + (reference.table.schema.map { [$0] } ?? [])
            names += reference.columns.map(\.name) + reference.referencedColumns.map(\.name)
        }
        return names
    }
}
