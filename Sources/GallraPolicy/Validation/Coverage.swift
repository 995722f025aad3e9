/// The places the policies leave out: what an extract or an erasure would miss.
///
/// Two kinds, worked out from the catalog and the policies alone (no rows are read):
/// - **Uncovered tables**: tables whose rows belong to a subject, because they reference a subject table by a
///   foreign key, directly or through other tables (foreign keys followed from the subject table to the tables
///   that reference it, and on), and that no policy over that subject table names in `data:`.
/// - **Personal columns**: columns whose names look personal (see ``personalWord(in:)``) in tables that no policy
///   covers at all, as subject table or data point.
///
/// Disabled policies cover nothing.
public struct Coverage: Sendable, Hashable {
    /// One foreign key on the path from a subject table to an uncovered table: `table` references the table before
    /// it on the path.
    public struct Hop: Sendable, Hashable {
        /// The referencing table.
        public var table: QualifiedName
        /// The foreign key's constraint name.
        public var foreignKey: String
        /// Its referencing columns.
        public var columns: [String]
    }

    /// A table whose rows belong to a subject and that no policy over the subject table names as a data point.
    public struct UncoveredTable: Sendable, Hashable {
        public var table: QualifiedName
        public var subjectTable: QualifiedName
        /// The shortest path of foreign keys from the subject table to `table`, nearest the subject first; its last
        /// hop is `table`'s own foreign key.
        public var path: [Hop]

        /// `shop.customer <- shop.order (customer_id) <- shop.order_line (order_id)`.
        public var pathText: String {
            ([subjectTable.description]
                + path.map { hop in
                    "\(hop.table) (\(hop.columns.map { ColumnName($0).description }.joined(separator: ", ")))"
                })
                .joined(separator: " <- ")
        }
    }

    /// A column with a personal-looking name in a table no policy covers.
    public struct PersonalColumn: Sendable, Hashable {
        public var table: QualifiedName
        public var column: String
        /// The word of the name that looks personal (`email` in `contact_email`).
        public var word: String
    }

    public var tables: [UncoveredTable]
    public var columns: [PersonalColumn]
    /// Subject tables of the policies in force that no on-request policy (`expires: on_request`) covers: erasure
    /// requests for their subjects are refused. A warning, not a gap: ``isEmpty`` leaves it out.
    public var withoutErasure: [QualifiedName]

    public var isEmpty: Bool { tables.isEmpty && columns.isEmpty }

    /// The warning for a subject table in ``withoutErasure``.
    public static func erasureWarning(_ table: QualifiedName) -> String {
        "erasure requests for \(table) will be refused: no policy over it has expires: on_request; add one that says what an erasure deletes and anonymizes (docs/requests.md)"
    }

    /// The places `policies` leave out in `catalog`; both lists sorted by table (and subject table, column).
    public init(policies: [Policy], catalog: Catalog) {
        let inForce = policies.filter { $0.state != .disabled }
        func resolved(_ name: QualifiedName) -> QualifiedName { catalog.table(name)?.name ?? name }
        var dataPoints: [QualifiedName: Set<QualifiedName>] = [:]
        var covered = Set<QualifiedName>()
        for policy in inForce {
            let subject = resolved(policy.subject.table)
            covered.insert(subject)
            for point in policy.dataPoints {
                dataPoints[subject, default: []].insert(resolved(point.table))
                covered.insert(resolved(point.table))
            }
        }

        let erasable = Set(inForce.filter { $0.rule == .onRequest }.map { resolved($0.subject.table) })
        withoutErasure = Set(inForce.map { resolved($0.subject.table) }).subtracting(erasable).sorted()

        var tables: [UncoveredTable] = []
        for subject in Set(inForce.map { resolved($0.subject.table) }).sorted() {
            let named = dataPoints[subject] ?? []
            for (table, path) in Self.referencingTables(from: subject, in: catalog) where !named.contains(table) {
                tables.append(UncoveredTable(table: table, subjectTable: subject, path: path))
            }
        }
        self.tables = tables.sorted { ($0.table, $0.subjectTable) < ($1.table, $1.subjectTable) }

        var columns: [PersonalColumn] = []
        for table in catalog.tables.values.sorted(by: { $0.name < $1.name }) {
            guard table.kind == .table || table.kind == .partitioned, table.partitionOf == nil,
                !covered.contains(table.name)
            else { continue }
            let keyColumns = Set(table.foreignKeys.flatMap(\.columns))
            for column in table.columns where !keyColumns.contains(column.name) && column.category != .boolean {
                if let word = Self.personalWord(in: column.name) {
                    columns.append(PersonalColumn(table: table.name, column: column.name, word: word))
                }
            }
        }
        self.columns = columns
    }

    /// Every table reached from `subject` by following foreign keys that reference the table before, breadth
    /// first, each with its shortest path (ties broken by table and constraint name). The subject table itself and
    /// partitions are not listed.
    static func referencingTables(from subject: QualifiedName, in catalog: Catalog) -> [(QualifiedName, [Hop])] {
        var paths: [QualifiedName: [Hop]] = [subject: []]
        var order: [QualifiedName] = []
        var frontier = [subject]
        while !frontier.isEmpty {
            var next: [QualifiedName] = []
            for table in frontier {
                let referencing = catalog.foreignKeys(referencing: table).sorted {
                    ($0.table.name, $0.foreignKey.name) < ($1.table.name, $1.foreignKey.name)
                }
                // Partitions are reached through their parent, which the policies name.
                for (child, foreignKey) in referencing where paths[child.name] == nil && child.partitionOf == nil {
                    let hop = Hop(table: child.name, foreignKey: foreignKey.name, columns: foreignKey.columns)
                    paths[child.name] = (paths[table] ?? []) + [hop]
                    order.append(child.name)
                    next.append(child.name)
                }
            }
            frontier = next
        }
        return order.map { ($0, paths[$0] ?? []) }
    }

    /// The words that make a column name look personal, each matched as a whole word of the name.
    public static let personalWords: Set<String> = [
        "email", "emails", "phone", "phones", "name", "names", "firstname", "lastname", "fullname", "surname",
        "address", "addresses", "birth", "birthday", "birthdate", "ip",
    ]

    /// The word of `column` that looks personal, or nil. The name is split into words at underscores, digits and
    /// lower-to-upper case changes (`contact_email`, `ContactEmail`, `email2` give `email`), and a word matches only
    /// whole: `full_name`, `ip_address` and `birth_date` look personal, `named_by`, `zip` and `shipped` do not.
    public static func personalWord(in column: String) -> String? {
        words(of: column).first { personalWords.contains($0) }
    }

    static func words(of name: String) -> [String] {
        var words: [String] = []
        var current = ""
        var previousIsLower = false
        for character in name {
            let isLetter = character.isLetter
            if !isLetter {
                if !current.isEmpty { words.append(current) }
                current = ""
                previousIsLower = false
                continue
            }
            if character.isUppercase, previousIsLower, !current.isEmpty {
                words.append(current)
                current = ""
            }
            current += character.lowercased()
            previousIsLower = character.isLowercase
        }
        if !current.isEmpty { words.append(current) }
        return words
    }
}
