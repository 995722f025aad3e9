/// Links between tables: a path from the subject is a list of hops, each following one foreign key (in either
/// direction) or a `via` column.
///
/// `via` names a column of one hop's tables. It applies to the hop nearest the data point whose two tables
/// have a column of that name (usually the last hop: `{ table: shop.newsletter_log, via: customer_ref }`;
/// also `{ exists: shop.order_line, through: shop.order, via: customer_id }`, where `customer_id` is a column
/// of `shop.order`). On that hop it picks the foreign key holding the column; where none does, the column
/// itself is the link: in the farther table it holds the nearer table's key (the subject key on the first
/// hop, otherwise the single-column primary key), in the nearer table it holds the farther table's primary key.
/// The types must be compatible (same category: `integer` and `bigint` link, `text` and `bigint` do not).
extension PolicyValidator {
    /// The hops from `tables[0]` (the subject table) through each next table; nil after reporting a problem.
    /// `tablePaths[k]` is where `tables[k + 1]` was written.
    mutating func resolvePath(
        _ tables: [CatalogTable], via: ColumnName?, viaPath: String, tablePaths: [String]
    ) -> [JoinHop]? {
        var viaHop: Int?
        if let via {
            viaHop = (0..<(tables.count - 1)).reversed().first { hop in
                tables[hop].column(via.name) != nil || tables[hop + 1].column(via.name) != nil
            }
            if viaHop == nil {
                let target = tables[tables.count - 1]
                let previous = tables[tables.count - 2]
                let names = target.columns.map(\.name) + previous.columns.map(\.name)
                let hint = Suggestions.closest(to: via.name, among: names, matching: .name).map {
                    Self.hint(IdentifierSyntax.render($0), $0, via.name)
                }
                error(
                    "via: column \(via) is in neither \(target.name) nor \(previous.name)\(hint ?? ""); via names the column that links them",
                    at: viaPath)
                return nil
            }
        }
        var hops: [JoinHop] = []
        for position in 0..<(tables.count - 1) {
            let hopVia = position == viaHop ? via : nil
            guard
                let hop = resolveHop(
                    from: tables[position], to: tables[position + 1], via: hopVia, fromSubject: position == 0,
                    at: hopVia == nil ? tablePaths[position] : viaPath)
            else { return nil }
            hops.append(hop)
        }
        return hops
    }

    /// The one link between `from` (nearer the subject) and `to`.
    mutating func resolveHop(
        from: CatalogTable, to: CatalogTable, via: ColumnName?, fromSubject: Bool, at path: String
    ) -> JoinHop? {
        func names(_ columns: [String]) -> [ColumnName] { columns.map { ColumnName($0) } }
        func child(_ key: ForeignKey) -> JoinHop {
            JoinHop(
                from: from.name, fromColumns: names(key.referencedColumns), to: to.name, toColumns: names(key.columns),
                direction: .child, foreignKey: key.name, onDelete: key.onDelete, via: via)
        }
        func parent(_ key: ForeignKey) -> JoinHop {
            JoinHop(
                from: from.name, fromColumns: names(key.columns), to: to.name, toColumns: names(key.referencedColumns),
                direction: .parent, foreignKey: key.name, onDelete: key.onDelete, via: via)
        }
        let childKeys = to.foreignKeys.filter { $0.referencedTable == from.name }
        // A table linked to itself: its foreign key is followed from the referenced row to the referencing one.
        let parentKeys = from.name == to.name ? [] : from.foreignKeys.filter { $0.referencedTable == to.name }

        func describe(_ hop: JoinHop) -> String {
            "\(hop.foreignKey ?? "") (\(Self.columnList(hop.referencingTable, hop.referencingColumns)) -> \(Self.columnList(hop.direction == .child ? hop.from : hop.to, hop.direction == .child ? hop.fromColumns : hop.toColumns)))"
        }

        guard let via else {
            let candidates = childKeys.map(child) + parentKeys.map(parent)
            if candidates.count == 1 { return candidates[0] }
            if candidates.isEmpty {
                let guess = guessLink(from: from, to: to, fromSubject: fromSubject)
                let example = guess.map { "via: \($0)" } ?? "via: COLUMN"
                error(
                    "no foreign key links \(to.name) and \(from.name); name the column that links them with \(example), or the tables between them with through: [TABLE, ...]",
                    at: path)
                return nil
            }
            let options = candidates.map { "via: \($0.referencingColumns.map(\.description).joined(separator: ", "))" }
            error(
                "\(to.name) and \(from.name) are linked by \(candidates.count) foreign keys: \(candidates.map(describe).joined(separator: ", ")); say which one to follow with \(Self.orList(options))",
                at: path)
            return nil
        }

        let matching =
            childKeys.filter { $0.columns.contains(via.name) }.map(child)
            + parentKeys.filter { $0.columns.contains(via.name) }.map(parent)
        if matching.count == 1 { return matching[0] }
        if matching.count > 1 {
            error(
                "via: \(via) belongs to \(matching.count) foreign keys between \(to.name) and \(from.name): \(matching.map(describe).joined(separator: ", ")); a via column must pick one",
                at: path)
            return nil
        }
        // No foreign key holds the column: the column itself is the link.
        if let column = to.column(via.name) {
            let keyName: String? = fromSubject ? subjectKey.name : singleKey(of: from)
            guard let keyName, let key = from.column(keyName) else {
                error(
                    "via: \(to.name).\(via) has no foreign key, and \(from.name) has no single-column primary key for it to hold; declare the foreign key, or link through another table",
                    at: path)
                return nil
            }
            guard compatible(column, key) else {
                error(
                    "via: \(Self.columnList(to.name, [via])) is \(column.type) but \(Self.columnList(from.name, [ColumnName(keyName)])) is \(key.type); a link needs the same kind of type (both numbers, both text, ...)",
                    at: path)
                return nil
            }
            return JoinHop(
                from: from.name, fromColumns: [ColumnName(keyName)], to: to.name, toColumns: [via], direction: .child,
                foreignKey: nil, onDelete: nil, via: via)
        }
        guard let column = from.column(via.name) else { return nil }
        guard let keyName = singleKey(of: to), let key = to.column(keyName) else {
            error(
                "via: \(from.name).\(via) has no foreign key, and \(to.name) has no single-column primary key for it to point to; declare the foreign key",
                at: path)
            return nil
        }
        guard compatible(column, key) else {
            error(
                "via: \(Self.columnList(from.name, [via])) is \(column.type) but \(Self.columnList(to.name, [ColumnName(keyName)])) is \(key.type); a link needs the same kind of type (both numbers, both text, ...)",
                at: path)
            return nil
        }
        return JoinHop(
            from: from.name, fromColumns: [via], to: to.name, toColumns: [ColumnName(keyName)], direction: .parent,
            foreignKey: nil, onDelete: nil, via: via)
    }

    func singleKey(of table: CatalogTable) -> String? {
        guard let primaryKey = table.primaryKey, primaryKey.count == 1 else { return nil }
        return primaryKey[0]
    }

    /// Same type category; user-defined types (uuid, ...) must be the same type.
    func compatible(_ left: CatalogColumn, _ right: CatalogColumn) -> Bool {
        guard left.category == right.category else { return false }
        if left.category == .userDefined || left.category == .enumeration { return left.baseType == right.baseType }
        return true
    }

    /// A column of `to` that probably holds `from`'s key (`customer_ref` for `shop.customer`), for the hint.
    func guessLink(from: CatalogTable, to: CatalogTable, fromSubject: Bool) -> String? {
        let keyName = fromSubject ? subjectKey.name : singleKey(of: from)
        guard let keyName, let key = from.column(keyName) else { return nil }
        let stem = from.name.name.lowercased()
        return to.columns.first { column in
            compatible(column, key) && column.name.lowercased().hasPrefix(stem) && column.name != keyName
        }.map { IdentifierSyntax.render($0.name) }
    }

    /// `shop.order.customer_id` or `shop.t.(a, b)`.
    static func columnList(_ table: QualifiedName, _ columns: [ColumnName]) -> String {
        if columns.count == 1 { return "\(table).\(columns[0])" }
        return "\(table).(\(columns.map(\.description).joined(separator: ", ")))"
    }

    static func orList(_ items: [String]) -> String {
        guard items.count > 1 else { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " or " + items[items.count - 1]
    }
}
