/// Validates a policy against the live catalog: names exist, types fit the strategies, links are unambiguous,
/// deletes are not blocked by kept rows, the role may do what the policy needs. Pure: the catalog is a value.
///
/// Returns every error and warning found (each with its place in the file and how to fix it) and, when there
/// is no error, the ``ResolvedPolicy`` the engine plans from.
public func validate(_ parsed: ParsedPolicy, against catalog: Catalog) -> Validation {
    var validator = PolicyValidator(parsed: parsed, catalog: catalog)
    let resolved = validator.run()
    let diagnostics = validator.diagnostics.sorted { lhs, rhs in
        let left = lhs.location.map { ($0.line, $0.column) } ?? (Int.max, 0)
        let right = rhs.location.map { ($0.line, $0.column) } ?? (Int.max, 0)
        return left < right
    }
    let hasErrors = diagnostics.contains { $0.severity == .error }
    return Validation(diagnostics: diagnostics, resolved: hasErrors ? nil : resolved)
}

extension ParsedPolicy {
    /// Validates the policy against the catalog (see ``validate(_:against:)``).
    public func validate(against catalog: Catalog) -> Validation {
        GallraPolicy.validate(self, against: catalog)
    }
}

/// A data point resolved to its tables and path, before ordering.
struct PendingStep {
    var dataPoint: Int
    var table: CatalogTable
    var path: [JoinHop]
    var action: ResolvedStep.Action
    var notes: [String] = []

    var relation: ResolvedStep.Relation {
        if path.isEmpty { return .subject }
        return path.allSatisfy { $0.direction == .child } ? .owned : .referenced
    }
    var isDelete: Bool { if case .delete = action { true } else { false } }
    /// Columns this step sets to NULL.
    var nulledColumns: Set<String> {
        guard case .anonymize(let columns) = action else { return [] }
        return Set(columns.filter { $0.strategy == .null || $0.strategy == .set(.null) }.map(\.column.name))
    }
    /// Columns this step changes.
    var changedColumns: Set<String> {
        guard case .anonymize(let columns) = action else { return [] }
        return Set(columns.map(\.column.name))
    }
}

struct PolicyValidator {
    let parsed: ParsedPolicy
    let catalog: Catalog
    var diagnostics: [PolicyDiagnostic] = []
    /// Privileges the policy needs, per table, with the first place that needs them.
    var needs: [QualifiedName: (privileges: Set<Privilege>, path: String, why: String)] = [:]
    var neededOrder: [QualifiedName] = []
    /// Missing-index warnings already given (table and columns).
    var warnedIndexes: Set<[String]> = []
    /// Columns used as `via` links without a foreign key: only `null` may change them.
    var viaLinks: [QualifiedName: Set<String>] = [:]

    var policy: Policy { parsed.policy }
    var source: PolicySourceMap { parsed.source }

    init(parsed: ParsedPolicy, catalog: Catalog) {
        self.parsed = parsed
        self.catalog = catalog
    }

    // MARK: - Reporting

    mutating func report(_ severity: PolicyDiagnostic.Severity, _ message: String, at path: String, key: Bool = false) {
        let location = key ? source.keyLocation(of: path) : source.location(of: path)
        diagnostics.append(PolicyDiagnostic(severity: severity, location: location, path: path, message: message))
    }

    mutating func error(_ message: String, at path: String, key: Bool = false) {
        report(.error, message, at: path, key: key)
    }

    mutating func warning(_ message: String, at path: String, key: Bool = false) {
        report(.warning, message, at: path, key: key)
    }

    mutating func need(_ privileges: Set<Privilege>, on table: CatalogTable, at path: String, why: String) {
        if var existing = needs[table.name] {
            existing.privileges.formUnion(privileges)
            needs[table.name] = existing
        } else {
            needs[table.name] = (privileges, path, why)
            neededOrder.append(table.name)
        }
    }

    /// The path of a column entry (`data[2].anonymize.Email` for the column `email`), as the source map keys it.
    func entryPath(_ prefix: String, column: ColumnName) -> String {
        let start = prefix + "."
        for key in source.entries.keys.sorted() where key.hasPrefix(start) {
            let rest = String(key.dropFirst(start.count))
            if let name = try? ColumnName(parsing: rest), name == column { return key }
            if rest == column.name { return key }
        }
        return start + column.name
    }

    // MARK: - The run

    mutating func run() -> ResolvedPolicy? {
        guard let subjectTable = table(policy.subject.table, at: "subject.table", what: "subject table", acted: true)
        else {
            // Without the subject table no link can be resolved; report the names that can still be checked.
            for (index, point) in policy.dataPoints.enumerated() {
                _ = table(point.table, at: "data[\(index)].table", what: "data point table", acted: true)
            }
            return nil
        }
        let subject = resolveSubject(subjectTable)
        need([.select, .update], on: subjectTable, at: "subject.table", why: "to lock expiring subjects (FOR UPDATE)")
        let rule = resolveRule(subjectTable)
        var exemptions: [ResolvedExemption] = []
        for (index, exemption) in policy.exemptions.enumerated() {
            if let resolved = resolveExemption(exemption, index: index, subjectTable: subjectTable) {
                exemptions.append(resolved)
            }
        }
        var pending: [PendingStep] = []
        var allResolved = true
        for (index, point) in policy.dataPoints.enumerated() {
            if let step = resolveDataPoint(point, index: index, subjectTable: subjectTable) {
                pending.append(step)
            } else {
                allResolved = false
            }
        }
        for index in pending.indices {
            pending[index].action = checkAction(pending[index])
        }
        checkPrivileges()
        guard allResolved, let subject, let rule, !diagnostics.contains(where: { $0.severity == .error }) else {
            return nil
        }
        checkDeletes(&pending)
        guard let steps = order(pending) else { return nil }
        return ResolvedPolicy(policy: policy, subject: subject, rule: rule, exemptions: exemptions, steps: steps)
    }

    // MARK: - Tables and columns

    /// The catalog table a policy name refers to, or nil after reporting why there is none usable.
    /// `acted`: the policy deletes or updates it (or locks it), so it must be a table, not a view.
    mutating func table(_ name: QualifiedName, at path: String, what: String, acted: Bool) -> CatalogTable? {
        guard let table = catalog.table(name) else {
            error(missingTableMessage(name, what: what), at: path)
            return nil
        }
        if let parent = table.partitionOf {
            error(
                "\(what) \(table.name) is a partition of \(parent); name the partitioned table \(parent); gallra acts through it",
                at: path)
            return nil
        }
        switch table.kind {
        case .table, .partitioned:
            return table
        case .view, .materializedView, .foreignTable:
            guard acted else { return table }
            let kind =
                switch table.kind {
                case .view: "a view"
                case .materializedView: "a materialized view"
                default: "a foreign table"
                }
            error(
                "\(what) \(table.name) is \(kind); gallra deletes and updates rows of tables only. Name the table that holds the rows",
                at: path)
            return nil
        }
    }

    func missingTableMessage(_ name: QualifiedName, what: String) -> String {
        let all = catalog.tables.keys.sorted()
        // Suggestions compare exact names ("Sales.OrderItems"), then render them in identifier syntax.
        func closest(_ word: String, among tables: [QualifiedName], qualified: Bool, render: Bool? = nil) -> String {
            let raw = tables.map { qualified ? "\($0.schema ?? "").\($0.name)" : $0.name }
            guard let found = Suggestions.closest(to: word, among: raw, matching: .name),
                let position = raw.firstIndex(of: found)
            else {
                return ""
            }
            let table = tables[position]
            let rendered = render ?? qualified ? table.description : IdentifierSyntax.render(table.name)
            return Self.hint(rendered, found, word)
        }
        if let schema = name.schema {
            let inSchema = all.filter { $0.schema == schema }
            if inSchema.isEmpty {
                let hint = closest("\(schema).\(name.name)", among: all, qualified: true)
                return
                    "\(what) \(name) does not exist: schema \(IdentifierSyntax.render(schema)) holds no table gallra can see\(hint)"
            }
            let suggestion = Suggestions.closest(to: name.name, among: inSchema.map(\.name), matching: .name)
            let hint = suggestion.map { Self.hint(QualifiedName(schema: schema, name: $0).description, $0, name.name) }
            return "\(what) \(name) does not exist\(hint ?? "")"
        }
        if let elsewhere = all.first(where: { $0.name == name.name }) {
            let path = catalog.searchPath.map { IdentifierSyntax.render($0) }.joined(separator: ", ")
            return
                "\(what) \(name) is not in a schema on the search path (\(path)); write it with its schema: \(elsewhere)"
        }
        let visible = all.filter { table in catalog.searchPath.contains { $0 == table.schema } }
        let hint = closest(name.name, among: visible, qualified: false)
        return
            "\(what) \(name) does not exist\(hint.isEmpty ? closest(name.name, among: all, qualified: false, render: true) : hint)"
    }

    /// `; did you mean X?`, explaining case folding when only the case differs.
    static func hint(_ rendered: String, _ suggestion: String, _ written: String) -> String {
        if suggestion.lowercased() == written.lowercased() {
            return
                "; did you mean \(rendered)? Names without double quotes are folded to lower case: write \(rendered) (in YAML, put single quotes around a value that starts with a double quote)"
        }
        return "; did you mean \(rendered)?"
    }

    /// The column of `table`, or nil after reporting it missing with a did-you-mean.
    mutating func column(
        _ name: ColumnName, of table: CatalogTable, at path: String, what: String, key: Bool = false
    ) -> CatalogColumn? {
        if let column = table.column(name.name) { return column }
        let names = table.columns.map(\.name)
        let hint = Suggestions.closest(to: name.name, among: names, matching: .name).map {
            Self.hint(IdentifierSyntax.render($0), $0, name.name)
        }
        error("\(what): column \(name) does not exist in \(table.name)\(hint ?? "")", at: path, key: key)
        return nil
    }

    // MARK: - Subject

    mutating func resolveSubject(_ table: CatalogTable) -> ResolvedSubject? {
        let key = policy.subject.key
        guard let column = column(key, of: table, at: "subject.key", what: "subject key") else { return nil }
        let isPrimaryKey = table.primaryKey == [key.name]
        let isUnique = table.uniqueKeys.contains([key.name])
        if !isPrimaryKey && !(isUnique && !column.isNullable) {
            let primary =
                table.primaryKey.map { "the primary key is (\($0.joined(separator: ", ")))" } ?? "it has no primary key"
            if isUnique {
                error(
                    "subject key \(key) is unique but nullable in \(table.name), so a subject could have no key; use the primary key, or make \(key) NOT NULL",
                    at: "subject.key")
            } else {
                error(
                    "subject key \(key) does not identify one row of \(table.name): it must be the primary key or a unique NOT NULL column (\(primary))",
                    at: "subject.key")
            }
            return nil
        }
        return ResolvedSubject(
            table: table.name, key: key, keyType: column.type, keyCategory: column.category,
            isPartitioned: table.kind == .partitioned, estimatedRows: table.estimatedRows)
    }

    var subjectKey: ColumnName { policy.subject.key }

    // MARK: - Rule

    mutating func resolveRule(_ subject: CatalogTable) -> ResolvedRule? {
        switch policy.rule {
        case .inactiveFor(let period, .column(let name)):
            return columnRule(.inactiveFor, period, name, subject, at: "expires.activity", what: "activity")
        case .inactiveFor(let period, .latestRow(let tableName, let columnName, let via)):
            return relatedRule(
                .inactiveFor, period, table: tableName, column: columnName, via: via, subject: subject,
                prefix: "expires.activity", columnKey: "column", what: "activity")
        case .olderThan(let period, let name):
            return columnRule(.olderThan, period, name, subject, at: "expires.created", what: "created")
        case .after(let period, let name):
            return columnRule(.after, period, name, subject, at: "expires.event", what: "event")
        case .consentRevoked(let grace, .table(let tableName, let revokedAt, let via)):
            return relatedRule(
                .consentRevoked, grace, table: tableName, column: revokedAt, via: via, subject: subject,
                prefix: "expires.consent", columnKey: "revoked_at", what: "consent revoked_at")
        case .consentRevoked(_, .gallra):
            error(
                "consent: gallra's own consent table is not available in this version; name your consent table: consent: { table: TABLE, revoked_at: COLUMN }",
                at: "expires.consent")
            return nil
        }
    }

    mutating func timestampColumn(
        _ name: ColumnName, of table: CatalogTable, at path: String, what: String
    ) -> CatalogColumn? {
        guard let column = column(name, of: table, at: path, what: what) else { return nil }
        guard ColumnTypes.isDateOrTimestamp(column) else {
            error(
                "\(what): \(name) is \(column.type); it must be a date or timestamp column (timestamptz, timestamp or date)",
                at: path)
            return nil
        }
        return column
    }

    mutating func columnRule(
        _ kind: ResolvedRule.Kind, _ period: RetentionPeriod, _ name: ColumnName, _ subject: CatalogTable,
        at path: String, what: String
    ) -> ResolvedRule? {
        guard let column = timestampColumn(name, of: subject, at: path, what: what) else { return nil }
        let index = indexName(on: subject, leadingWith: [name.name])
        if index == nil {
            warnMissingIndex(
                on: subject, columns: [name], at: path,
                why: "finding the expiring subjects reads the whole of \(subject.name) on every run")
        }
        return ResolvedRule(
            kind: kind, period: period, table: subject.name, column: name, columnType: column.type, path: [],
            index: index)
    }

    mutating func relatedRule(
        _ kind: ResolvedRule.Kind, _ period: RetentionPeriod, table tableName: QualifiedName, column name: ColumnName,
        via: ColumnName?, subject: CatalogTable, prefix: String, columnKey: String, what: String
    ) -> ResolvedRule? {
        guard let related = table(tableName, at: prefix + ".table", what: "\(what) table", acted: false) else {
            return nil
        }
        need([.select], on: related, at: prefix + ".table", why: "to read the expiry rule")
        let column = timestampColumn(name, of: related, at: prefix + "." + columnKey, what: what)
        guard
            let hops = resolvePath(
                [subject, related], via: via, viaPath: prefix + ".via", tablePaths: [prefix + ".table"]),
            let column
        else { return nil }
        let hop = hops[0]
        recordViaLinks(hops)
        var index = indexName(on: related, leadingWith: hop.toColumns.map(\.name))
        if index == nil, hop.direction == .child {
            warnMissingIndex(
                on: related, columns: hop.toColumns + [name], at: via == nil ? prefix + ".table" : prefix + ".via",
                why: "finding each subject's latest row reads the whole of \(related.name)")
        } else if hop.direction == .parent {
            index = index ?? "primary key"
        }
        return ResolvedRule(
            kind: kind, period: period, table: related.name, column: name, columnType: column.type, path: hops,
            index: index)
    }

    // MARK: - Exemptions

    mutating func resolveExemption(_ exemption: Exemption, index: Int, subjectTable: CatalogTable)
        -> ResolvedExemption?
    {
        let prefix = "except[\(index)]"
        switch exemption {
        case .column(let name, let predicate):
            guard let column = column(name, of: subjectTable, at: prefix + ".column", what: "exemption") else {
                return nil
            }
            let key = ["is", "equals", "in", "not_in"].first { source.entries["\(prefix).\($0)"] != nil } ?? "column"
            guard checkPredicate(predicate, column: column, at: "\(prefix).\(key)") else { return nil }
            return ResolvedExemption(index: index, exemption: exemption, table: subjectTable.name, path: [])
        case .relatedExists(let tableName, let through, let via, let conditions):
            guard let related = table(tableName, at: prefix + ".exists", what: "exists", acted: false) else {
                return nil
            }
            var tables = [subjectTable]
            var ok = true
            for (step, name) in through.enumerated() {
                if let hop = table(name, at: "\(prefix).through[\(step)]", what: "through", acted: false) {
                    tables.append(hop)
                } else {
                    ok = false
                }
            }
            tables.append(related)
            for condition in conditions {
                let path = entryPath(prefix + ".where", column: condition.column)
                if let column = column(condition.column, of: related, at: path, what: "where", key: true) {
                    ok = checkPredicate(condition.predicate, column: column, at: path) && ok
                } else {
                    ok = false
                }
            }
            guard ok, checkCycle(tables, prefix: prefix, targetPath: prefix + ".exists") else { return nil }
            for table in tables.dropFirst() {
                need([.select], on: table, at: prefix + ".exists", why: "to evaluate the exemption")
            }
            let tablePaths = through.indices.map { "\(prefix).through[\($0)]" } + [prefix + ".exists"]
            guard let hops = resolvePath(tables, via: via, viaPath: prefix + ".via", tablePaths: tablePaths) else {
                return nil
            }
            recordViaLinks(hops)
            warnMissingLinkIndexes(hops, tables: tables, via: via, viaPath: prefix + ".via", tablePaths: tablePaths)
            return ResolvedExemption(index: index, exemption: exemption, table: related.name, path: hops)
        }
    }

    /// Whether the predicate's values fit the column; reports each misfit.
    mutating func checkPredicate(_ predicate: Exemption.Predicate, column: CatalogColumn, at path: String) -> Bool {
        switch predicate {
        case .is(.true), .is(.false):
            guard column.category == .boolean else {
                error(
                    "is: true and is: false need a boolean column; \(ColumnName(column.name)) is \(column.type). Compare with equals: VALUE or in: [...]",
                    at: path)
                return false
            }
            return true
        case .is(.null):
            if !column.isNullable {
                warning(
                    "is: null never matches: \(ColumnName(column.name)) is NOT NULL; remove this condition",
                    at: path)
            }
            return true
        case .equals(let value):
            return checkValues([value], column: column, at: path, what: "equals")
        case .in(let values):
            return checkValues(values, column: column, at: path, what: "in")
        case .notIn(let values):
            return checkValues(values, column: column, at: path, what: "not_in")
        }
    }

    mutating func checkValues(_ values: [Scalar], column: CatalogColumn, at path: String, what: String) -> Bool {
        var ok = true
        for value in values {
            if let problem = ColumnTypes.misfit(value, for: column) {
                error("\(what): \(problem)", at: path)
                ok = false
            }
        }
        return ok
    }

    // MARK: - Data points

    mutating func resolveDataPoint(_ point: DataPoint, index: Int, subjectTable: CatalogTable) -> PendingStep? {
        let prefix = "data[\(index)]"
        guard let target = table(point.table, at: prefix + ".table", what: "data point table", acted: true) else {
            for (step, name) in point.through.enumerated() {
                _ = table(name, at: "\(prefix).through[\(step)]", what: "through", acted: false)
            }
            return nil
        }
        var tables = [subjectTable]
        var ok = true
        for (step, name) in point.through.enumerated() {
            if let hop = table(name, at: "\(prefix).through[\(step)]", what: "through", acted: false) {
                tables.append(hop)
            } else {
                ok = false
            }
        }
        tables.append(target)
        guard ok, checkCycle(tables, prefix: prefix, targetPath: prefix + ".table") else { return nil }
        let acting: Set<Privilege> = point.action == .delete ? [.select, .delete] : [.select, .update]
        need(acting, on: target, at: prefix + ".table", why: "for data[\(index)]")
        for table in tables.dropFirst().dropLast() {
            need([.select], on: table, at: prefix + ".through", why: "to follow the path of data[\(index)]")
        }
        if target.name == subjectTable.name, point.through.isEmpty {
            if point.via != nil {
                error(
                    "via: data[\(index)] is the subject row itself, which needs no link; remove via",
                    at: prefix + ".via")
                return nil
            }
            return PendingStep(dataPoint: index, table: target, path: [], action: placeholder(point.action))
        }
        let tablePaths = point.through.indices.map { "\(prefix).through[\($0)]" } + [prefix + ".table"]
        guard let hops = resolvePath(tables, via: point.via, viaPath: prefix + ".via", tablePaths: tablePaths) else {
            return nil
        }
        recordViaLinks(hops)
        warnMissingLinkIndexes(hops, tables: tables, via: point.via, viaPath: prefix + ".via", tablePaths: tablePaths)
        return PendingStep(dataPoint: index, table: target, path: hops, action: placeholder(point.action))
    }

    /// The action before its columns are checked (``checkAction(_:)`` fills them in).
    func placeholder(_ action: Action) -> ResolvedStep.Action {
        switch action {
        case .delete: .delete
        case .anonymize: .anonymize([])
        }
    }

    /// A path visits each table once: `customer` and `shop.customer` written in one path are the same table.
    mutating func checkCycle(_ tables: [CatalogTable], prefix: String, targetPath: String) -> Bool {
        var seen: [QualifiedName: Int] = [:]
        var ok = true
        for (position, table) in tables.enumerated() {
            if let earlier = seen[table.name] {
                // The subject row reached again (a path back to the subject table) is allowed only at the end.
                if earlier == 0, position == tables.count - 1 { continue }
                let path = position == tables.count - 1 ? targetPath : "\(prefix).through[\(position - 1)]"
                let what = earlier == 0 ? "the subject table" : "already on the path"
                error(
                    "through: \(table.name) is \(what); a path visits each table once (a cycle is not a path). Remove it from through",
                    at: path)
                ok = false
            } else {
                seen[table.name] = position
            }
        }
        return ok
    }

    mutating func recordViaLinks(_ hops: [JoinHop]) {
        for hop in hops where hop.foreignKey == nil {
            viaLinks[hop.referencingTable, default: []].formUnion(hop.referencingColumns.map(\.name))
        }
    }

    // MARK: - Privileges

    mutating func checkPrivileges() {
        let role = catalog.role.map { IdentifierSyntax.render($0, for: .sql) }
        for name in neededOrder {
            guard let (privileges, path, why) = needs[name], let table = catalog.tables[name] else { continue }
            let missing = Privilege.allCases.filter { privileges.contains($0) && !table.privileges.contains($0) }
            guard !missing.isEmpty else { continue }
            let list = missing.map { $0.rawValue.uppercased() }.joined(separator: ", ")
            let who = role.map { "role \($0)" } ?? "the role gallra connects as"
            error(
                "\(who) lacks \(list) on \(table.name), needed \(why); run: GRANT \(list) ON \(table.name.rendered(for: .sql)) TO \(role ?? "<gallra's role>");",
                at: path)
        }
    }

    // MARK: - Indexes

    func indexName(on table: CatalogTable, leadingWith columns: [String]) -> String? {
        if let primaryKey = table.primaryKey, primaryKey.starts(with: columns) { return "primary key" }
        return table.indexes.first { index in
            !index.isPartial && index.columns.count >= columns.count
                && zip(index.columns, columns).allSatisfy { $0 == $1 }
        }?.name
    }

    mutating func warnMissingIndex(on table: CatalogTable, columns: [ColumnName], at path: String, why: String) {
        let key = [table.name.description] + columns.map(\.name)
        guard warnedIndexes.insert(key).inserted else { return }
        let list = columns.rendered(for: .sql)
        let statement: String
        if table.kind == .partitioned {
            statement =
                "CREATE INDEX ON \(table.name.rendered(for: .sql)) (\(list)); (a partitioned table takes no CONCURRENTLY: to avoid locking it, create the index on each partition CONCURRENTLY first)"
        } else {
            statement = "CREATE INDEX CONCURRENTLY ON \(table.name.rendered(for: .sql)) (\(list));"
        }
        warning(
            "no index on \(table.name) (\(columns.map(\.description).joined(separator: ", "))): \(why); create one: \(statement)",
            at: path)
    }

    /// Each hop looks rows of `to` up by `toColumns`: without an index that is a scan per batch.
    mutating func warnMissingLinkIndexes(
        _ hops: [JoinHop], tables: [CatalogTable], via: ColumnName?, viaPath: String, tablePaths: [String]
    ) {
        for (position, hop) in hops.enumerated() {
            let target = tables[position + 1]
            guard indexName(on: target, leadingWith: hop.toColumns.map(\.name)) == nil else { continue }
            let path = hop.via != nil && via != nil ? viaPath : tablePaths[position]
            warnMissingIndex(
                on: target, columns: hop.toColumns, at: path,
                why: "finding the rows of each batch's subjects reads the whole table")
        }
    }
}
