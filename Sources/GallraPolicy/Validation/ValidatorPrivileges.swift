/// What the connected role may do, and the indexes a run's lookups need.
extension PolicyValidator {
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
                at: path, lacksPrivilege: true)
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
