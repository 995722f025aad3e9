/// `except:`: conditions on the subject row and related rows that exist.
extension PolicyDecoder {
    /// The conditions an exemption puts on a column, by their key.
    enum PredicateKind: String, CaseIterable {
        case `is`, equals, `in`
        case notIn = "not_in"
    }

    static let predicateKeys = PredicateKind.allCases.map(\.rawValue)

    mutating func exemption(_ node: DocumentNode, path: String) -> Exemption? {
        let example = "{ column: legal_hold, is: true } or { exists: shop.order, where: { status: open } }"
        if case .mapping(let pairs) = node.kind,
            pairs.contains(where: { if case .scalar("exists", _) = $0.key.kind { true } else { false } })
        {
            guard
                let fields = fields(
                    node, path: path, what: "exemption", allowed: ["exists", "through", "via", "where"],
                    example: example)
            else { return nil }
            var ok = true
            let table = self.table(fields["exists"]!, path: fields.path("exists"), what: "exists")
            var through: [QualifiedName] = []
            if let node = fields["through"] {
                if let tables = self.through(node, path: fields.path("through")) {
                    through = tables
                } else {
                    ok = false
                }
            }
            var via: ColumnName?
            if let node = fields["via"] {
                via = column(node, path: fields.path("via"), what: "via")
                ok = ok && via != nil
            }
            var conditions: [Exemption.ColumnCondition] = []
            if let node = fields["where"] {
                let wherePath = fields.path("where")
                if case .mapping(let pairs) = node.kind {
                    for (key, value) in pairs {
                        guard case .scalar(let name, _) = key.kind else {
                            error("where: keys are column names, not \(key.kindDescription)", at: key, path: wherePath)
                            ok = false
                            continue
                        }
                        let conditionPath = Self.child(wherePath, name)
                        if let location = value.location {
                            entries[conditionPath] = PolicySourceMap.Entry(key: key.location, value: location)
                        }
                        let column = self.column(key, path: conditionPath, what: "where")
                        let predicate = wherePredicate(value, path: conditionPath)
                        if let column, let predicate {
                            conditions.append(Exemption.ColumnCondition(column: column, predicate: predicate))
                        } else {
                            ok = false
                        }
                    }
                    var columns: Set<ColumnName> = []
                    for condition in conditions where !columns.insert(condition.column).inserted {
                        error(
                            "where: column \(condition.column) is given twice; combine the conditions into one",
                            at: node, path: wherePath)
                        ok = false
                    }
                    conditions.sort { $0.column < $1.column }
                    if pairs.isEmpty {
                        error(
                            "where: empty; remove it or name a column, e.g. where: { status: open }", at: node,
                            path: wherePath)
                        ok = false
                    }
                } else {
                    error(
                        "where: expected a mapping of columns like { status: { in: [open, paid] } }, got \(node.kindDescription)",
                        at: node, path: wherePath)
                    ok = false
                }
            }
            guard ok, let table else { return nil }
            return .relatedExists(table: table, through: through, via: via, conditions: conditions)
        }
        guard
            let fields = fields(
                node, path: path, what: "exemption", allowed: ["column", "exists"] + Self.predicateKeys,
                example: example)
        else { return nil }
        guard let columnNode = fields["column"] else {
            error(
                "exemption: give column: (a column of the subject) or exists: (a related table); for example \(example)",
                at: fields.location, path: path)
            return nil
        }
        let column = self.column(columnNode, path: fields.path("column"), what: "exemption column")
        let given = PredicateKind.allCases.filter { fields.has($0.rawValue) }
        guard given.count == 1 else {
            if given.isEmpty {
                error(
                    "exemption: missing the condition on \(columnNode.kindDescription); add one of is, equals, in, not_in, e.g. is: true",
                    at: fields.location, path: path)
            } else {
                error(
                    "exemption: \(given.map(\.rawValue).joined(separator: " and ")) given together; use one condition per exemption (list several exemptions instead)",
                    at: fields.keyLocation(given[1].rawValue), path: fields.path(given[1].rawValue))
            }
            return nil
        }
        guard let predicate = predicate(given[0], fields[given[0].rawValue]!, path: fields.path(given[0].rawValue)),
            let column
        else {
            return nil
        }
        return .column(column, predicate)
    }

    /// A `where` entry: `{ in: [a, b] }` (any predicate), `[a, b]` (in), or a single value (equals; null means is null).
    mutating func wherePredicate(_ node: DocumentNode, path: String) -> Exemption.Predicate? {
        switch node.kind {
        case .mapping:
            guard
                let fields = fields(
                    node, path: path, what: "where condition", allowed: Self.predicateKeys,
                    example: "{ in: [open, paid] }")
            else { return nil }
            let given = PredicateKind.allCases.filter { fields.has($0.rawValue) }
            guard given.count == 1 else {
                error("where condition: give exactly one of is, equals, in, not_in", at: node, path: path)
                return nil
            }
            return predicate(given[0], fields[given[0].rawValue]!, path: fields.path(given[0].rawValue))
        case .sequence:
            return predicate(.in, node, path: path)
        case .scalar(let text, let plain):
            if Scalar(resolving: text, plain: plain) == .null { return .is(.null) }
            return predicate(.equals, node, path: path)
        }
    }

    mutating func predicate(_ kind: PredicateKind, _ node: DocumentNode, path: String) -> Exemption.Predicate? {
        let key = kind.rawValue
        switch kind {
        case .is:
            if case .scalar(let text, true) = node.kind {
                switch Scalar(resolving: text, plain: true) {
                case .boolean(true): return .is(.true)
                case .boolean(false): return .is(.false)
                case .null: return .is(.null)
                default: break
                }
            }
            error("is: expected true, false or null, got \(node.kindDescription)", at: node, path: path)
            return nil
        case .equals:
            guard let value = scalar(node, path: path, what: "equals") else { return nil }
            // As documented (and as the short form `column: null` reads): `equals: null` means `is: null`.
            return value == .null ? .is(.null) : .equals(value)
        case .in, .notIn:
            guard case .sequence(let items) = node.kind else {
                error("\(key): expected a list like [open, paid], got \(node.kindDescription)", at: node, path: path)
                return nil
            }
            guard !items.isEmpty else {
                error("\(key): the list is empty; give at least one value", at: node, path: path)
                return nil
            }
            var values: [Scalar] = []
            var ok = true
            for (index, item) in items.enumerated() {
                if let value = scalar(item, path: Self.item(path, index), what: key) {
                    // `in: [a, null]` also matches a null column (documented); a null in `not_in` would exclude
                    // nothing, since not_in never exempts a null column.
                    if value == .null, kind == .notIn {
                        error(
                            "\(key): null in the list has no effect (not_in never exempts a null column); remove it, or add a separate is: null exemption",
                            at: item, path: Self.item(path, index))
                        ok = false
                    }
                    values.append(value)
                } else {
                    ok = false
                }
            }
            guard ok else { return nil }
            return kind == .in ? .in(values) : .notIn(values)
        }
    }

    mutating func through(_ node: DocumentNode, path: String) -> [QualifiedName]? {
        if case .scalar = node.kind {
            guard let table = table(node, path: path, what: "through") else { return nil }
            return [table]
        }
        guard let items = list(node, path: path, what: "through") else { return nil }
        var tables: [QualifiedName] = []
        var ok = true
        for (index, item) in items.enumerated() {
            if let table = table(item, path: Self.item(path, index), what: "through") {
                tables.append(table)
            } else {
                ok = false
            }
        }
        return ok ? tables : nil
    }
}
