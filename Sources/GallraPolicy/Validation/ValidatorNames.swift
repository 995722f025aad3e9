/// Finding the tables and columns a policy names in the catalog, with a did-you-mean when they are missing.
extension PolicyValidator {
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
        catalog.missingTableMessage(name, what: what)
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
}

extension Catalog {
    /// Why `name` names no table of the catalog, with a did-you-mean: `\(what) shop.custmer does not exist; did
    /// you mean shop.customer?`, or that its schema holds no table, or that it is not on the search path.
    public func missingTableMessage(_ name: QualifiedName, what: String) -> String {
        let all = tables.keys.sorted()
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
            return PolicyValidator.hint(rendered, found, word)
        }
        if let schema = name.schema {
            let inSchema = all.filter { $0.schema == schema }
            if inSchema.isEmpty {
                let hint = closest("\(schema).\(name.name)", among: all, qualified: true)
                return
                    "\(what) \(name) does not exist: schema \(IdentifierSyntax.render(schema)) holds no table gallra can see\(hint)"
            }
            let suggestion = Suggestions.closest(to: name.name, among: inSchema.map(\.name), matching: .name)
            let hint = suggestion.map {
                PolicyValidator.hint(QualifiedName(schema: schema, name: $0).description, $0, name.name)
            }
            return "\(what) \(name) does not exist\(hint ?? "")"
        }
        if let elsewhere = all.first(where: { $0.name == name.name }) {
            let path = searchPath.map { IdentifierSyntax.render($0) }.joined(separator: ", ")
            return
                "\(what) \(name) is not in a schema on the search path (\(path)); write it with its schema: \(elsewhere)"
        }
        let visible = all.filter { table in searchPath.contains { $0 == table.schema } }
        let hint = closest(name.name, among: visible, qualified: false)
        return
            "\(what) \(name) does not exist\(hint.isEmpty ? closest(name.name, among: all, qualified: false, render: true) : hint)"
    }
}
