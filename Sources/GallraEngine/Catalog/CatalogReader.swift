// Reads the live database's catalog (pg_catalog) into the `Catalog` value the policy validator checks against.
//
// What is read: ordinary and partitioned tables, views, materialized views and foreign tables in every schema
// but PostgreSQL's own (pg_catalog, pg_toast, temporary schemas: every `pg_*`), information_schema and
// gallra's own. Names are kept exactly as the catalog holds them (mixed case, spaces, quotes).
//
// Partitions are listed with `partitionOf` set. Foreign keys that PostgreSQL clones for partitions
// (`pg_constraint.conparentid <> 0`: a parent's foreign key copied to each partition, or a key referencing a
// partitioned table copied per referenced partition) are left out: the parent's key describes them, and listing
// the clones would make every link through a partitioned table look ambiguous.
import GallraCore
import GallraPolicy
import GallraPostgres

/// Reads `Catalog`s from a live database.
public enum CatalogReader {
    /// The relations gallra may see, as a subquery of OIDs (`c` is pg_class, `n` its namespace).
    static let relationFilter = """
        c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND n.nspname NOT IN ('information_schema', 'gallra')
          AND n.nspname NOT LIKE 'pg\\_%'
        """

    static var relationOIDs: String {
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE \(relationFilter)"
    }

    /// The catalog as the connected role sees it (privileges are `current_user`'s). Runs in one read-only
    /// REPEATABLE READ transaction, so all of it describes one instant; inside a transaction already open on this
    /// task, it uses that one.
    public static func read(on connection: PostgresConnection) async throws -> Catalog {
        if await connection.isInTransaction {
            return try await readQueries(on: connection)
        }
        return try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            try await readQueries(on: connection)
        }
    }

    private static func readQueries(on connection: PostgresConnection) async throws -> Catalog {
        var tables: [UInt32: CatalogTable] = [:]
        for row in try await connection.query(relationsQuery) {
            let kind: CatalogTable.Kind
            switch try row.decode("kind", as: String.self) {
            case "r": kind = .table
            case "p": kind = .partitioned
            case "v": kind = .view
            case "m": kind = .materializedView
            case "f": kind = .foreignTable
            default: continue
            }
            var privileges: Set<Privilege> = []
            if try row.decode("can_select", as: Bool.self) { privileges.insert(.select) }
            if try row.decode("can_update", as: Bool.self) { privileges.insert(.update) }
            if try row.decode("can_delete", as: Bool.self) { privileges.insert(.delete) }
            if try row.decode("can_trigger", as: Bool.self) { privileges.insert(.trigger) }
            let parentName = try row.decode("parent_name", as: String?.self)
            let parentSchema = try row.decode("parent_schema", as: String?.self)
            tables[try oid(row, "oid")] = CatalogTable(
                name: QualifiedName(schema: try row.decode("schema", as: String.self), name: try row.decode("name")),
                kind: kind,
                partitionOf: parentName.map { QualifiedName(schema: parentSchema, name: $0) },
                columns: [],
                estimatedRows: try row.decode("reltuples", as: Double.self),
                bytes: try row.decode("bytes", as: Int64?.self),
                privileges: privileges)
        }

        for row in try await connection.query(columnsQuery) {
            let relation = try oid(row, "attrelid")
            guard tables[relation] != nil else { continue }
            let category = try row.decode("category", as: String.self)
            let column = CatalogColumn(
                name: try row.decode("name"),
                type: try row.decode("type"),
                baseType: try row.decode("base_type", as: String.self),
                category: CatalogColumn.TypeCategory(rawValue: category) ?? .unknown,
                maximumLength: try row.decode("maximum_length", as: Int?.self),
                isNullable: !(try row.decode("not_null", as: Bool.self)),
                isGenerated: try row.decode("generated", as: Bool.self),
                enumLabels: category == "E" ? try nameList(row, "enum_labels").compactMap { $0 } : nil)
            tables[relation]?.columns.append(column)
            for check in try domainChecks(row) {
                var check = CatalogCheck(
                    name: check.name, columns: [column.name], definition: "domain \(column.type): \(check.definition)")
                try await probeDomain(&check, column: column, on: connection)
                tables[relation]?.checks.append(check)
            }
        }

        for row in try await connection.query(indexesQuery) {
            let relation = try oid(row, "indrelid")
            guard tables[relation] != nil else { continue }
            let columns = try nameList(row, "columns")
            let isUnique = try row.decode("is_unique", as: Bool.self)
            let isPartial = try row.decode("is_partial", as: Bool.self)
            tables[relation]?.indexes.append(
                CatalogIndex(name: try row.decode("name"), columns: columns, isUnique: isUnique, isPartial: isPartial))
            let keyColumns = columns.compactMap { $0 }
            if isUnique, !isPartial, keyColumns.count == columns.count,
                !(try row.decode("is_primary", as: Bool.self)),
                tables[relation]?.uniqueKeys.contains(keyColumns) == false
            {
                tables[relation]?.uniqueKeys.append(keyColumns)
            }
        }

        for row in try await connection.query(constraintsQuery) {
            let relation = try oid(row, "conrelid")
            guard let table = tables[relation] else { continue }
            let columns = try nameList(row, "columns").compactMap { $0 }
            switch try row.decode("type", as: String.self) {
            case "p":
                tables[relation]?.primaryKey = columns
            case "c":
                var check = CatalogCheck(
                    name: try row.decode("name"), columns: columns, definition: try row.decode("definition"))
                if columns.count == 1, let column = table.column(columns[0]) {
                    try await probe(
                        &check, column: column, expression: try row.decode("expression"), on: connection)
                }
                tables[relation]?.checks.append(check)
            default:
                func action(_ code: String) -> ForeignKey.Action {
                    switch code {
                    case "r": .restrict
                    case "c": .cascade
                    case "n": .setNull
                    case "d": .setDefault
                    default: .noAction
                    }
                }
                tables[relation]?.foreignKeys.append(
                    ForeignKey(
                        name: try row.decode("name"),
                        columns: columns,
                        referencedTable: QualifiedName(
                            schema: try row.decode("referenced_schema", as: String.self),
                            name: try row.decode("referenced_name")),
                        referencedColumns: try nameList(row, "referenced_columns").compactMap { $0 },
                        onDelete: action(try row.decode("on_delete", as: String.self)),
                        onUpdate: action(try row.decode("on_update", as: String.self)),
                        matchFull: try row.decode("match_type", as: String.self) == "f"))
            }
        }

        // shared_buffers is counted in blocks (pg_settings.unit 8kB), bgwriter_delay in milliseconds.
        let path = try await connection.query(
            """
            SELECT array_to_json(current_schemas(false))::text AS path, current_user::text AS role,
                   (SELECT s.setting::int8 * current_setting('block_size')::int8 FROM pg_settings AS s
                    WHERE s.name = 'shared_buffers') AS shared_buffers,
                   (SELECT s.setting::int4 FROM pg_settings AS s WHERE s.name = 'bgwriter_delay') AS bgwriter_delay,
                   current_setting('bgwriter_lru_maxpages')::int4 AS bgwriter_lru_maxpages
            """)
        let searchPath = try path.first.map { try nameList($0, "path").compactMap { $0 } } ?? []
        let role = try path.first?.decode("role", as: String.self)
        let sharedBuffers = try path.first?.decode("shared_buffers", as: Int64?.self)
        var backgroundWriter: BackgroundWriter?
        if let row = path.first, let delay = try row.decode("bgwriter_delay", as: Int?.self) {
            backgroundWriter = BackgroundWriter(
                delayMilliseconds: delay, maxPages: try row.decode("bgwriter_lru_maxpages"))
        }
        return Catalog(
            tables: Array(tables.values), searchPath: searchPath, role: role, sharedBuffers: sharedBuffers,
            backgroundWriter: backgroundWriter)
    }

    /// Asks the server whether a CHECK constraint over one column holds with the column null, and with it set to
    /// the `redact` constant of its type: the expression (the server's own text of it) evaluated over a one-row
    /// subquery whose one column has the constrained column's name and type. A probe that fails (an expression
    /// that reads more than the column, a constant that does not cast) leaves the answer unknown, in a savepoint
    /// so that the catalog's transaction goes on.
    private static func probe(
        _ check: inout CatalogCheck, column: CatalogColumn, expression: String, on connection: PostgresConnection
    ) async throws {
        guard SQLTypeName.isCastable(column.type) else { return }
        let row = "(SELECT $1::text::\(column.type) AS \(SQLIdentifier.quoted(column.name))) AS t"
        let sql = "SELECT (\(expression)) IS NOT FALSE AS holds FROM \(row)"
        func holds(_ value: String?) async throws -> Bool? {
            try await connection.execute("SAVEPOINT gallra_check_probe")
            do {
                let result = try await connection.query(sql, [value.map(PostgresValue.text) ?? .null])
                try await connection.execute("RELEASE SAVEPOINT gallra_check_probe")
                return try result.first?.decode("holds", as: Bool.self)
            } catch let error as PostgresError where error.sqlState != nil {
                try await connection.execute("ROLLBACK TO SAVEPOINT gallra_check_probe")
                return nil
            }
        }
        check.acceptsNull = try await holds(nil)
        if let constant = column.redactConstant {
            check.acceptsRedaction = try await holds(SQLText.text(of: constant))
        }
    }

    /// A domain's CHECK constraints are the cast's: the column's own type, with null and with `redact`'s
    /// constant. Any error fails the value, as it would fail the run's update.
    private static func probeDomain(
        _ check: inout CatalogCheck, column: CatalogColumn, on connection: PostgresConnection
    ) async throws {
        guard SQLTypeName.isCastable(column.type) else { return }
        func holds(_ value: String?) async throws -> Bool {
            try await connection.execute("SAVEPOINT gallra_check_probe")
            do {
                _ = try await connection.query(
                    "SELECT $1::text::\(column.type) AS value", [value.map(PostgresValue.text) ?? .null])
                try await connection.execute("RELEASE SAVEPOINT gallra_check_probe")
                return true
            } catch let error as PostgresError where error.sqlState != nil {
                try await connection.execute("ROLLBACK TO SAVEPOINT gallra_check_probe")
                return false
            }
        }
        check.acceptsNull = try await holds(nil)
        if let constant = column.redactConstant {
            check.acceptsRedaction = try await holds(SQLText.text(of: constant))
        }
    }

    /// The `[name, definition]` pairs of the column's domain CHECK constraints, along its chain of domains.
    private static func domainChecks(_ row: PostgresRow) throws -> [(name: String, definition: String)] {
        guard let text = try row.decode("domain_checks", as: String?.self) else { return [] }
        guard case .array(let items) = try JSONValue(parsing: text) else {
            throw PostgresError(.decoding, "column \"domain_checks\" is not a JSON array")
        }
        return items.compactMap { item in
            guard case .array(let pair) = item, pair.count == 2, let name = pair[0].stringValue,
                let definition = pair[1].stringValue
            else { return nil }
            return (name, definition)
        }
    }

    private static func oid(_ row: PostgresRow, _ column: String) throws -> UInt32 {
        guard case .oid(let value) = try row.decode(column, as: PostgresValue.self) else {
            throw PostgresError(.decoding, "column \"\(column)\" is not an oid")
        }
        return value
    }

    /// A JSON array of names (or nulls, for index expressions), as the queries aggregate them.
    private static func nameList(_ row: PostgresRow, _ column: String) throws -> [String?] {
        guard let text = try row.decode(column, as: String?.self) else { return [] }
        guard case .array(let items) = try JSONValue(parsing: text) else {
            throw PostgresError(.decoding, "column \"\(column)\" is not a JSON array")
        }
        return items.map(\.stringValue)
    }

    static var relationsQuery: String {
        """
        SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
               c.reltuples::float8 AS reltuples,
               -- Sizes as of the last VACUUM or ANALYZE: pg_relation_size would lock each table.
               CASE WHEN c.relkind IN ('r', 'm') THEN
                    (c.relpages + coalesce((SELECT sum(ic.relpages) FROM pg_index AS i
                                            JOIN pg_class AS ic ON ic.oid = i.indexrelid
                                            WHERE i.indrelid = c.oid), 0))::int8
                    * current_setting('block_size')::int8 END AS bytes,
               pn.nspname AS parent_schema, pc.relname AS parent_name,
               has_table_privilege(c.oid, 'SELECT') AS can_select,
               has_table_privilege(c.oid, 'UPDATE') AS can_update,
               has_table_privilege(c.oid, 'DELETE') AS can_delete,
               has_table_privilege(c.oid, 'TRIGGER') AS can_trigger
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
        LEFT JOIN pg_class pc ON pc.oid = i.inhparent
        LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
        WHERE \(relationFilter)
        """
    }

    /// Columns in attnum order. Domains are resolved to their base type through any chain of domains: the base
    /// type's name and category, the innermost length modifier, and NOT NULL if the column or any domain says so.
    static var columnsQuery: String {
        """
        WITH RECURSIVE domain_base(domain, base, typmod, not_null) AS (
            SELECT t.oid, t.typbasetype, t.typtypmod, t.typnotnull FROM pg_type t WHERE t.typtype = 'd'
            UNION ALL
            SELECT d.domain, t.typbasetype, CASE WHEN d.typmod >= 0 THEN d.typmod ELSE t.typtypmod END,
                   d.not_null OR t.typnotnull
            FROM domain_base d JOIN pg_type t ON t.oid = d.base AND t.typtype = 'd'
        ),
        resolved AS (
            SELECT d.* FROM domain_base d
            WHERE NOT EXISTS (SELECT FROM pg_type t WHERE t.oid = d.base AND t.typtype = 'd')
        )
        SELECT a.attrelid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
               bt.typname::text AS base_type, bt.typcategory::text AS category,
               CASE WHEN bt.typname IN ('varchar', 'bpchar')
                         AND COALESCE(NULLIF(a.atttypmod, -1), r.typmod, -1) >= 4
                    THEN COALESCE(NULLIF(a.atttypmod, -1), r.typmod) - 4 END AS maximum_length,
               a.attnotnull OR COALESCE(r.not_null, false) AS not_null,
               a.attgenerated <> '' AS generated,
               (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
                WHERE e.enumtypid = bt.oid)::text AS enum_labels,
               (SELECT json_agg(json_build_array(con.conname, pg_get_constraintdef(con.oid)) ORDER BY con.conname)
                FROM pg_constraint con
                WHERE con.contype = 'c' AND (con.contypid = a.atttypid
                      OR con.contypid IN (SELECT d.base FROM domain_base d WHERE d.domain = a.atttypid))
               )::text AS domain_checks
        FROM pg_attribute a
        LEFT JOIN resolved r ON r.domain = a.atttypid
        JOIN pg_type bt ON bt.oid = COALESCE(r.base, a.atttypid)
        WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attrelid IN (\(relationOIDs))
        ORDER BY a.attrelid, a.attnum
        """
    }

    /// Valid indexes with their key columns (INCLUDE columns left out; expressions as null), by name.
    static var indexesQuery: String {
        """
        SELECT i.indrelid, ic.relname AS name, i.indisunique AS is_unique, i.indisprimary AS is_primary,
               i.indpred IS NOT NULL AS is_partial,
               (SELECT json_agg(a.attname ORDER BY k.position)
                FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
                LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
                WHERE k.position <= i.indnkeyatts)::text AS columns
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indisvalid AND i.indrelid IN (\(relationOIDs))
        ORDER BY i.indrelid, ic.relname
        """
    }

    /// Primary keys, CHECK constraints and foreign keys (not the clones PostgreSQL makes for partitions), columns in
    /// constraint order.
    static var constraintsQuery: String {
        """
        SELECT con.conrelid, con.conname AS name, con.contype::text AS type, con.confdeltype::text AS on_delete,
               con.confupdtype::text AS on_update, con.confmatchtype::text AS match_type,
               pg_get_constraintdef(con.oid) AS definition, pg_get_expr(con.conbin, con.conrelid) AS expression,
               (SELECT json_agg(a.attname ORDER BY k.position)
                FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, position)
                JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum)::text AS columns,
               (SELECT json_agg(a.attname ORDER BY k.position)
                FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, position)
                JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum)::text AS referenced_columns,
               rn.nspname AS referenced_schema, rc.relname AS referenced_name
        FROM pg_constraint con
        LEFT JOIN pg_class rc ON rc.oid = con.confrelid
        LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        WHERE (con.contype IN ('p', 'c') OR (con.contype = 'f' AND con.conparentid = 0))
          AND con.conrelid IN (\(relationOIDs))
        ORDER BY con.conrelid, con.conname
        """
    }
}
