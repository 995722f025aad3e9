/// `data:`: the tables holding a subject's data, the paths to them, and their actions.
extension PolicyDecoder {
    mutating func dataPoint(_ node: DocumentNode, path: String) -> DataPoint? {
        let example = "{ table: shop.order, anonymize: { email: fake_email } } or { table: shop.cart, delete: true }"
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
        case (.some, .some):
            error(
                "data point: delete and anonymize given together; a data point does one of them (deleted rows need no anonymizing)",
                at: fields.keyLocation("anonymize"), path: fields.path("anonymize"))
            _ = anonymize(fields["anonymize"]!, path: fields.path("anonymize"))
        case (let deleteNode?, nil):
            let deletePath = fields.path("delete")
            if case .scalar(let text, true) = deleteNode.kind, Scalar(resolving: text, plain: true) == .boolean(true) {
                action = .delete
            } else if case .scalar(let text, true) = deleteNode.kind,
                Scalar(resolving: text, plain: true) == .boolean(false)
            {
                error(
                    "delete: false does nothing; remove the data point, or give anonymize: { column: strategy } instead",
                    at: deleteNode, path: deletePath)
            } else {
                error("delete: expected true, got \(deleteNode.kindDescription)", at: deleteNode, path: deletePath)
            }
        case (nil, let anonymizeNode?):
            action = anonymize(anonymizeNode, path: fields.path("anonymize"))
        case (nil, nil):
            error(
                "data point: say what to do with the rows: delete: true, or anonymize: { email: fake_email, ... }",
                at: fields.location, path: path)
        }
        guard ok, let table, let action else { return nil }
        return DataPoint(table: table, through: through, via: via, action: action)
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
