import GallraCore
import GallraPolicy
import GallraPostgres

/// How an operator names one subject: by its key, or by the value of another column that holds exactly one row.
public enum SubjectMatch: Sendable, Hashable {
    /// The key column's value, in its text form (`1234`).
    case key(String)
    /// A column and the value it must equal (`email` and `ada@example.org`).
    case column(ColumnName, value: String)
}

/// A subject found in its table: the key as PostgreSQL prints the key column's value (`::text`), the form the
/// audit trail's digests and the consent registry use.
public struct FoundSubject: Sendable, Hashable {
    public var table: QualifiedName
    public var keyColumn: ColumnName
    public var key: String
}

/// Why a subject could not be found. The description names the table and the column, never the key or the value
/// given, nor any other subject's key; nor a column the table does not have, which may be the start of a key that
/// holds `=`.
public struct SubjectFinderError: Error, Sendable, Hashable, ExitStatusProviding {
    public enum Code: String, Sendable, Hashable {
        /// No row has that key or value (exit 66).
        case noSuchSubject
        /// More than one row has that value (exit 65).
        case severalSubjects
        /// No stored policy has its subjects in the table.
        case uncoveredTable
        /// The stored policies over the table name different key columns.
        case keysDisagree
        /// The table has no column of that name.
        case unknownColumn
        /// The value is not of the column's type (`abc` for an integer).
        case valueDoesNotFit
        /// The column's type has no equality (`json`, `point`).
        case notComparable
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var exitStatus: ExitStatus { code == .noSuchSubject ? .noInput : .dataError }
    public var description: String { message }
}

/// Finds one subject by its key or by a column's value, in a table some stored policy has its subjects in.
///
/// The key column is the one the stored policies over the table name (`subject.key` of `gallra.policy_latest`):
/// those not disabled, or the disabled ones when only disabled policies cover the table. The value is a bound
/// parameter cast to the column's type without its modifier (`character varying`, not `character varying(5)`,
/// which would cut a longer value), so `042` finds the integer key 42, equality is the type's own, and an index on
/// the column serves the lookup.
public enum SubjectFinder {
    /// Finds the subject `match` names in `table` (schema-qualified).
    ///
    /// - Throws: ``SubjectFinderError`` (`.noSuchSubject` exits 66, the others 65); `PostgresError` for anything
    ///   else the server refuses.
    public static func find(
        table: QualifiedName, _ match: SubjectMatch, on connection: PostgresConnection
    ) async throws -> FoundSubject {
        let catalog = try await CatalogReader.read(on: connection)
        let policies = try await PolicyStore(connection: connection).loadAll().policies.map(\.policy)
        let keyColumn = try keyColumn(of: table, policies: policies, catalog: catalog)
        let column: ColumnName
        let value: String
        switch match {
        case .key(let key):
            (column, value) = (keyColumn, key)
        case .column(let name, let given):
            (column, value) = (name, given)
        }
        guard let catalogTable = catalog.tables[table] else {
            // A policy names it, and the database no longer has it.
            throw SubjectFinderError(
                .uncoveredTable,
                "\(table) does not exist in the database, though a stored policy names it; "
                    + "gallra policy validate says what changed")
        }
        guard catalogTable.column(column.name) != nil else {
            let columns = catalogTable.columns.map { ColumnName($0.name).description }.joined(separator: ", ")
            throw SubjectFinderError(
                .unknownColumn,
                "\(table) has no column of the name given before = (its columns: \(columns)). A key that holds "
                    + "= is written with its key column: \(table):\(keyColumn)=KEY")
        }
        guard catalogTable.column(keyColumn.name) != nil else {
            throw SubjectFinderError(
                .uncoveredTable,
                "\(table) has no column \(keyColumn), the key its policies name; gallra policy validate says what "
                    + "changed")
        }
        let tableSQL = SQLIdentifier.quoted(schema: table.schema, name: table.name)
        // The type without its modifier: a cast to varchar(5) or numeric(6,2) would cut or round the value given,
        // and match a row that does not hold it.
        let typeRows = try await connection.query(
            """
            SELECT format_type(a.atttypid, NULL) AS type FROM pg_attribute AS a
            WHERE a.attrelid = $1::text::regclass AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
            """, [.text(tableSQL), .text(column.name)])
        guard let columnType = try typeRows.first?.decode("type", as: String.self) else {
            throw SubjectFinderError(.unknownColumn, "\(table) has no column of the name given before =")
        }
        do {
            try SQLText.checkTypeName(columnType)
            try SQLText.checkIdentifier(column.name)
            try SQLText.checkIdentifier(keyColumn.name)
        } catch {
            throw SubjectFinderError(.notComparable, "\(table).\(column): \(error.description)")
        }
        let rows: PostgresResult
        do {
            rows = try await connection.query(
                """
                SELECT count(*) OVER () AS matches, s.\(SQLIdentifier.quoted(keyColumn.name))::text AS key
                FROM \(tableSQL) AS s
                WHERE s.\(SQLIdentifier.quoted(column.name)) = $1::text::\(columnType)
                LIMIT 1
                """, [.text(value)])
        } catch let error as PostgresError where error.sqlState?.errorClass == .dataException {
            let what = column == keyColumn ? "the key given" : "the value given"
            throw SubjectFinderError(
                .valueDoesNotFit, "\(what) is not a value of \(table).\(column), of type \(columnType)")
        } catch let error as PostgresError where error.sqlState == .undefinedFunction {
            throw SubjectFinderError(
                .notComparable,
                "\(table).\(column) is of type \(columnType), which has no equality: look the subject up by its key "
                    + "or by another column")
        }
        guard let row = rows.first else {
            let what = column == keyColumn ? "that key (\(keyColumn))" : "that \(column)"
            throw SubjectFinderError(.noSuchSubject, "no subject in \(table) has \(what)")
        }
        let matches = try row.decode("matches", as: Int.self)
        guard matches == 1 else {
            throw SubjectFinderError(
                .severalSubjects,
                "\(matches) subjects in \(table) have that \(column); name one by its key (\(table):KEY) or by a "
                    + "column whose values are unique")
        }
        guard let key = try row.decode("key", as: String?.self) else {
            throw SubjectFinderError(.noSuchSubject, "the subject in \(table) with that \(column) has no key")
        }
        return FoundSubject(table: table, keyColumn: keyColumn, key: key)
    }

    /// The key column of `table`'s subjects, as the stored policies over it name it: those not disabled, or the
    /// disabled ones when no other covers the table. Unqualified subject tables resolve through the catalog's
    /// search path.
    ///
    /// - Throws: ``SubjectFinderError`` `.uncoveredTable` when no policy has its subjects in `table`,
    ///   `.keysDisagree` when they name different key columns.
    public static func keyColumn(
        of table: QualifiedName, policies: [Policy], catalog: Catalog
    ) throws(SubjectFinderError) -> ColumnName {
        let over = policies.filter { (catalog.table($0.subject.table)?.name ?? $0.subject.table) == table }
        let inForce = over.filter { $0.state != .disabled }
        let deciding = (inForce.isEmpty ? over : inForce).sorted { $0.name.rawValue < $1.name.rawValue }
        guard let first = deciding.first else {
            let tables = Set(policies.map { catalog.table($0.subject.table)?.name ?? $0.subject.table }).sorted()
            let known =
                tables.isEmpty
                ? "no policy is stored (gallra policy apply stores them)"
                : "the subject tables of the stored policies: \(tables.map(\.description).joined(separator: ", "))"
            throw SubjectFinderError(
                .uncoveredTable,
                "no stored policy has its subjects in \(table), so gallra knows no key for it; \(known)")
        }
        let keys = Dictionary(grouping: deciding, by: \.subject.key)
        guard keys.count == 1 else {
            let each = deciding.map { "\($0.name.rawValue) says \($0.subject.key)" }.joined(separator: ", ")
            throw SubjectFinderError(
                .keysDisagree,
                "the policies over \(table) disagree on its key column (\(each)); make them name the same key "
                    + "and apply them")
        }
        return first.subject.key
    }
}
