/// `data:`: the tables holding a subject's data, the paths to them, and their actions.
extension PolicyDecoder {
    mutating func dataPoint(_ node: DocumentNode, path: String) -> DataPoint? {
        let example =
            "{ table: shop.order, anonymize: { email: fake_email } }, { table: shop.cart, delete: true }, or both: { table: shop.order, delete: true, anonymize: { email: fake_email } }"
        guard
            let fields = fields(
                node, path: path, what: "data point", allowed: ["table", "through", "via", "delete", "anonymize"],
                example: example)
        else { return nil }
        var ok = true
        var table: QualifiedName?
        if let node = fields["table"] {
            table = self.table(node, path: fields.path("table"), what: "table")
        } else {
            missing("table", in: fields, what: "data point", example: example)
        }
        var through: [QualifiedName] = []
        if let node = fields["through"] {
            if let tables = self.through(node, path: fields.path("through")) { through = tables } else { ok = false }
        }
        var via: ColumnName?
        if let node = fields["via"] {
            via = column(node, path: fields.path("via"), what: "via")
            ok = ok && via != nil
        }
        var action: Action?
        switch (fields["delete"], fields["anonymize"]) {
        case (let deleteNode?, let anonymizeNode?):
            // Both: delete where nothing references the rows any more, anonymize the rows still referenced.
            let deletes = self.deletes(deleteNode, path: fields.path("delete"), withAnonymize: true)
            if case .anonymize(let columns)? = anonymize(anonymizeNode, path: fields.path("anonymize")), deletes {
                action = .deleteOrAnonymize(columns)
            }
        case (let deleteNode?, nil):
            if deletes(deleteNode, path: fields.path("delete"), withAnonymize: false) { action = .delete }
        case (nil, let anonymizeNode?):
            action = anonymize(anonymizeNode, path: fields.path("anonymize"))
        case (nil, nil):
            error(
                "data point: say what to do with the rows: delete: true, anonymize: { email: fake_email, ... }, or both (delete where nothing references the rows any more, anonymize the others)",
                at: fields.location, path: path)
        }
        guard ok, let table, let action else { return nil }
        return DataPoint(table: table, through: through, via: via, action: action)
    }

    /// Whether `delete:` is `true`, after reporting anything else.
    mutating func deletes(_ node: DocumentNode, path: String, withAnonymize: Bool) -> Bool {
        guard case .scalar(let text, true) = node.kind else {
            error("delete: expected true, got \(node.kindDescription)", at: node, path: path)
            return false
        }
        switch Scalar(resolving: text, plain: true) {
        case .boolean(true):
            return true
        case .boolean(false):
            error(
                withAnonymize
                    ? "delete: false does nothing; remove it to anonymize the rows, or write delete: true to delete them where nothing references them any more and anonymize the others"
                    : "delete: false does nothing; remove the data point, or give anonymize: { column: strategy } instead",
                at: node, path: path)
        default:
            error("delete: expected true, got \(node.kindDescription)", at: node, path: path)
        }
        return false
    }

    mutating func anonymize(_ node: DocumentNode, path: String) -> Action? {
        guard case .mapping(let pairs) = node.kind else {
            error(
                "anonymize: expected a mapping of columns to strategies like { email: fake_email, phone: null }, got \(node.kindDescription)",
                at: node, path: path)
            return nil
        }
        guard !pairs.isEmpty else {
            error(
                "anonymize: no columns; name at least one, e.g. anonymize: { email: fake_email }, or use delete: true",
                at: node, path: path)
            return nil
        }
        var columns: [ColumnAnonymization] = []
        var seen: [ColumnName: String] = [:]
        var ok = true
        for (key, value) in pairs {
            guard case .scalar(let name, _) = key.kind else {
                error("anonymize: keys are column names, not \(key.kindDescription)", at: key, path: path)
                ok = false
                continue
            }
            let columnPath = Self.child(path, name)
            if let location = value.location {
                entries[columnPath] = PolicySourceMap.Entry(key: key.location, value: location)
            }
            let column = self.column(key, path: columnPath, what: "anonymize")
            let strategy = self.strategy(value, path: columnPath)
            guard let column, let strategy else {
                ok = false
                continue
            }
            if let earlier = seen[column] {
                error(
                    "anonymize: \(name.quotedForMessage) and \(earlier.quotedForMessage) name the same column \(column); give it once",
                    at: key, path: columnPath)
                ok = false
                continue
            }
            seen[column] = name
            columns.append(ColumnAnonymization(column: column, strategy: strategy))
        }
        guard ok else { return nil }
        return .anonymize(columns.sorted { $0.column < $1.column })
    }
}
