/// Exemptions: their columns, related tables and values, checked against the catalog's types.
extension PolicyValidator {
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
}
