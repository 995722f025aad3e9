/// Data points: the table of each, the path to it from the subject, and its action.
extension PolicyValidator {
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
        let acting: Set<Privilege> =
            switch point.action {
            case .delete: [.select, .delete]
            case .anonymize: [.select, .update]
            case .deleteOrAnonymize: [.select, .delete, .update]
            }
        need(acting, on: target, at: prefix + ".table", why: "for data[\(index)]")
        if case .deleteOrAnonymize = point.action {
            for (child, _) in references(to: target.name) where child.name != target.name {
                need(
                    [.select], on: child, at: prefix + ".table",
                    why: "to find the rows of \(target.name) it still references (data[\(index)])")
            }
        }
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
        if let parent = hops.firstIndex(where: { $0.direction == .parent }), hops.last?.direction == .child {
            let hop = hops[parent]
            error(
                "data[\(index)] reaches \(target.name) through a parent link (\(hop.from) points to \(hop.to)) followed by child links; gallra follows rows the subject points to only as the last links of a path. Reach \(target.name) from the subject through child links only (through: the tables that reference the subject), or end the path at \(hop.to)",
                at: prefix + ".table")
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
        case .deleteOrAnonymize: .deleteOrAnonymize([])
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
}
