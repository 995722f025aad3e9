/// What the validator knows about the live database: its tables, columns, keys, foreign keys and
/// indexes, as read from `pg_catalog` by the engine. A plain value, so validation is a pure
/// function of (policy, catalog) and is tested with hand-written catalogs.
public struct Catalog: Sendable, Hashable, Codable {
    /// Every table gallra may see, by schema-qualified name (schema always set).
    public var tables: [QualifiedName: CatalogTable]
    /// The schemas unqualified names are looked up in, in order (`current_schemas(false)`).
    public var searchPath: [String]
    /// The role gallra connects as (`current_user`), for the GRANT statements the validator proposes; nil if unknown.
    public var role: String?
    /// The server's buffer pool (`shared_buffers`) in bytes; nil if unknown.
    public var sharedBuffers: Int64?
    /// The server's background writer; nil if unknown.
    public var backgroundWriter: BackgroundWriter?

    public init(
        tables: [CatalogTable], searchPath: [String] = ["public"], role: String? = nil, sharedBuffers: Int64? = nil,
        backgroundWriter: BackgroundWriter? = nil
    ) {
        self.tables = Dictionary(tables.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.searchPath = searchPath
        self.role = role
        self.sharedBuffers = sharedBuffers
        self.backgroundWriter = backgroundWriter
    }

    /// The table a policy's name refers to: exact when qualified, else the first match along the search path.
    public func table(_ name: QualifiedName) -> CatalogTable? {
        if name.schema != nil { return tables[name] }
        for schema in searchPath {
            if let table = tables[QualifiedName(schema: schema, name: name.name)] { return table }
        }
        return nil
    }

    /// Foreign keys of other tables (and of the table itself) that reference `table`.
    public func foreignKeys(referencing table: QualifiedName) -> [(table: CatalogTable, foreignKey: ForeignKey)] {
        tables.values.sorted { $0.name < $1.name }.flatMap { candidate in
            candidate.foreignKeys.filter { $0.referencedTable == table }.map { (candidate, $0) }
        }
    }
}

/// A table (or partitioned table) as the catalog describes it.
public struct CatalogTable: Sendable, Hashable, Codable {
    /// What kind of relation this is (`pg_class.relkind`).
    public enum Kind: String, Sendable, Hashable, Codable {
        case table
        /// A partitioned table: policies name it, PostgreSQL routes to its partitions.
        case partitioned
        case view
        case materializedView
        case foreignTable
    }

    public var name: QualifiedName
    public var kind: Kind
    /// The parent when this table is a partition; policies should name the parent.
    public var partitionOf: QualifiedName?
    /// Columns in their `attnum` order (dropped and system columns left out).
    public var columns: [CatalogColumn]
    /// The primary key's columns, if any.
    public var primaryKey: [String]?
    /// Column sets that are unique: unique constraints and unique indexes without a predicate or expressions.
    public var uniqueKeys: [[String]]
    /// This table's own foreign keys (it is the referencing side).
    public var foreignKeys: [ForeignKey]
    /// Its CHECK constraints (NOT NULL is a column's ``CatalogColumn/isNullable``).
    public var checks: [CatalogCheck]
    /// Indexes usable for lookups (key columns; expression columns appear as nil).
    public var indexes: [CatalogIndex]
    /// The planner's row estimate (`pg_class.reltuples`; -1 when never analyzed).
    public var estimatedRows: Double
    /// The size of the table and its indexes in bytes, as of their last VACUUM or ANALYZE (`pg_class.relpages`);
    /// nil for a view, a foreign or a partitioned table.
    public var bytes: Int64?
    /// What the connected role may do to the table.
    public var privileges: Set<Privilege>

    public init(
        name: QualifiedName,
        kind: Kind = .table,
        partitionOf: QualifiedName? = nil,
        columns: [CatalogColumn],
        primaryKey: [String]? = nil,
        uniqueKeys: [[String]] = [],
        foreignKeys: [ForeignKey] = [],
        checks: [CatalogCheck] = [],
        indexes: [CatalogIndex] = [],
        estimatedRows: Double = -1,
        bytes: Int64? = nil,
        privileges: Set<Privilege> = Set(Privilege.allCases)
    ) {
        self.name = name
        self.kind = kind
        self.partitionOf = partitionOf
        self.columns = columns
        self.primaryKey = primaryKey
        self.uniqueKeys = uniqueKeys
        self.foreignKeys = foreignKeys
        self.checks = checks
        self.indexes = indexes
        self.estimatedRows = estimatedRows
        self.bytes = bytes
        self.privileges = privileges
    }

    /// The column of that exact name.
    public func column(_ name: String) -> CatalogColumn? {
        columns.first { $0.name == name }
    }

    /// Whether `columns` (in any order) are the primary key or a unique key.
    public func isUnique(_ columns: [String]) -> Bool {
        let wanted = Set(columns)
        if let primaryKey, Set(primaryKey) == wanted { return true }
        return uniqueKeys.contains { Set($0) == wanted }
    }
}

/// Table privileges of the role gallra connects as.
public enum Privilege: String, Sendable, Hashable, Codable, CaseIterable {
    case select
    case update
    case delete
    /// Creating triggers on the table (the consent guard of `collect: with_consent`).
    case trigger
}

/// A column and what its type allows.
public struct CatalogColumn: Sendable, Hashable, Codable {
    /// PostgreSQL's type categories (`pg_type.typcategory`), which decide the strategies a column takes.
    public enum TypeCategory: String, Sendable, Hashable, Codable {
        case string = "S"
        case numeric = "N"
        case dateTime = "D"
        case boolean = "B"
        case userDefined = "U"
        case array = "A"
        case enumeration = "E"
        case timespan = "T"
        case networkAddress = "I"
        case geometric = "G"
        case bitString = "V"
        case composite = "C"
        case range = "R"
        case pseudo = "P"
        case unknown = "X"
    }

    public var name: String
    /// The type as `format_type` prints it, e.g. `character varying(200)`, `timestamp with time zone`.
    public var type: String
    /// The type's name without modifiers (domains resolved to their base type), e.g. `varchar`, `timestamptz`.
    public var baseType: String
    public var category: TypeCategory
    /// The declared maximum length of a `varchar(n)`/`char(n)`, if any.
    public var maximumLength: Int?
    public var isNullable: Bool
    /// A generated column cannot be written.
    public var isGenerated: Bool
    /// The labels of an enum type (a domain over one: its base enum's), in their order; nil for other types.
    public var enumLabels: [String]?

    public init(
        name: String,
        type: String,
        baseType: String? = nil,
        category: TypeCategory,
        maximumLength: Int? = nil,
        isNullable: Bool = true,
        isGenerated: Bool = false,
        enumLabels: [String]? = nil
    ) {
        self.name = name
        self.type = type
        self.baseType = baseType ?? type
        self.category = category
        self.maximumLength = maximumLength
        self.isNullable = isNullable
        self.isGenerated = isGenerated
        self.enumLabels = enumLabels
    }
}

/// A foreign key, seen from the referencing table.
public struct ForeignKey: Sendable, Hashable, Codable {
    /// What deleting (`confdeltype`) or updating (`confupdtype`) a referenced row does to the referencing rows.
    public enum Action: String, Sendable, Hashable, Codable {
        case noAction = "NO ACTION"
        case restrict = "RESTRICT"
        case cascade = "CASCADE"
        case setNull = "SET NULL"
        case setDefault = "SET DEFAULT"

        /// Whether a delete of the referenced row fails while a referencing row remains.
        public var blocksDelete: Bool { self == .noAction || self == .restrict }
    }

    /// The constraint's name.
    public var name: String
    /// The referencing columns, in constraint order.
    public var columns: [String]
    public var referencedTable: QualifiedName
    /// The referenced columns, in the same order.
    public var referencedColumns: [String]
    public var onDelete: Action
    /// What changing a referenced key does (`ON UPDATE`).
    public var onUpdate: Action
    /// `MATCH FULL`: the referencing columns are all null or all set; a row with some of them null fails the key.
    public var matchFull: Bool

    public init(
        name: String,
        columns: [String],
        referencedTable: QualifiedName,
        referencedColumns: [String],
        onDelete: Action = .noAction,
        onUpdate: Action = .noAction,
        matchFull: Bool = false
    ) {
        self.name = name
        self.columns = columns
        self.referencedTable = referencedTable
        self.referencedColumns = referencedColumns
        self.onDelete = onDelete
        self.onUpdate = onUpdate
        self.matchFull = matchFull
    }
}

/// A CHECK constraint, and whether the values gallra's constant strategies write pass it.
///
/// The catalog reader asks the server, once per constraint over one column, whether the constraint holds for
/// that column set to null and to the `redact` constant of its type (a CHECK holds unless it is false). The
/// validator cannot evaluate an expression itself, so any other value written into a checked column is refused.
public struct CatalogCheck: Sendable, Hashable, Codable {
    /// The constraint's name.
    public var name: String
    /// The columns the expression reads.
    public var columns: [String]
    /// `CHECK (...)` as `pg_get_constraintdef` prints it, for messages.
    public var definition: String
    /// Whether the constraint holds with its one column null; nil when not asked (several columns).
    public var acceptsNull: Bool?
    /// Whether it holds with its one column set to the `redact` constant of its type; nil when not asked.
    public var acceptsRedaction: Bool?

    public init(
        name: String, columns: [String], definition: String, acceptsNull: Bool? = nil, acceptsRedaction: Bool? = nil
    ) {
        self.name = name
        self.columns = columns
        self.definition = definition
        self.acceptsNull = acceptsNull
        self.acceptsRedaction = acceptsRedaction
    }
}

/// An index, for the missing-index warnings.
public struct CatalogIndex: Sendable, Hashable, Codable {
    public var name: String
    /// Key columns in order; nil for an expression.
    public var columns: [String?]
    public var isUnique: Bool
    /// A partial index (with a WHERE clause) does not serve every lookup.
    public var isPartial: Bool

    public init(name: String, columns: [String?], isUnique: Bool = false, isPartial: Bool = false) {
        self.name = name
        self.columns = columns
        self.isUnique = isUnique
        self.isPartial = isPartial
    }
}

/// The server's background writer, which writes dirty buffers out ahead of the server processes that need a clean
/// one to read a page into. What it leaves, a process writes out itself before it can read.
public struct BackgroundWriter: Sendable, Hashable, Codable {
    /// `bgwriter_delay`: the pause between its rounds, in milliseconds.
    public var delayMilliseconds: Int
    /// `bgwriter_lru_maxpages`: buffers it writes out in one round at most; 0 stops it.
    public var maxPages: Int

    public init(delayMilliseconds: Int, maxPages: Int) {
        self.delayMilliseconds = delayMilliseconds
        self.maxPages = maxPages
    }

    /// Buffers it writes out in a second at most.
    public var pagesPerSecond: Int { maxPages * 1000 / max(1, delayMilliseconds) }
}
