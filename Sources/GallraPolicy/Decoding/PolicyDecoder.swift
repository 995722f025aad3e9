/// Reads the policy document shape (docs/policy-language.md) from document nodes, collecting every error
/// it can find instead of stopping at the first, and recording where each entry was written.
struct PolicyDecoder {
    var file: String?
    var diagnostics: [PolicyDiagnostic] = []
    var entries: [String: PolicySourceMap.Entry] = [:]

    init(file: String?) {
        self.file = file
    }

    var sourceMap: PolicySourceMap { PolicySourceMap(file: file, entries: entries) }

    // MARK: - Reporting

    mutating func error(_ message: String, at location: SourceLocation?, path: String) {
        diagnostics.append(PolicyDiagnostic(severity: .error, location: location, path: path, message: message))
    }

    mutating func error(_ message: String, at node: DocumentNode, path: String) {
        error(message, at: node.location, path: path)
    }

    static func child(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }
    static func item(_ path: String, _ index: Int) -> String { "\(path)[\(index)]" }

    // MARK: - Shapes

    /// The entries of a mapping whose keys must come from `allowed`; unknown keys are reported with a suggestion.
    struct Fields {
        var values: [String: DocumentNode] = [:]
        var keyLocations: [String: SourceLocation] = [:]
        var location: SourceLocation?
        var path: String
        /// Allowed keys suggested for misspelt ones: their absence is not reported a second time.
        var suggested: Set<String> = []

        subscript(key: String) -> DocumentNode? { values[key] }
        func has(_ key: String) -> Bool { values[key] != nil }
        func path(_ key: String) -> String { PolicyDecoder.child(path, key) }
        func keyLocation(_ key: String) -> SourceLocation? { keyLocations[key] ?? location }
    }

    mutating func fields(_ node: DocumentNode, path: String, what: String, allowed: [String], example: String)
        -> Fields?
    {
        guard case .mapping(let pairs) = node.kind else {
            error("\(what): expected a mapping like \(example), got \(node.kindDescription)", at: node, path: path)
            return nil
        }
        var fields = Fields(location: node.location, path: path)
        for (key, value) in pairs {
            guard case .scalar(let name, _) = key.kind else {
                error(
                    "\(what): keys are plain words like \(allowed.first ?? "table"), not \(key.kindDescription)",
                    at: key, path: path)
                continue
            }
            guard allowed.contains(name) else {
                let hint = Suggestions.didYouMean(name, among: allowed)
                if let suggestion = Suggestions.closest(to: name, among: allowed) {
                    fields.suggested.insert(suggestion)
                }
                let options = hint.isEmpty ? "; \(what) takes \(allowed.joined(separator: ", "))" : hint
                error("\(name): unknown key in \(what)\(options)", at: key, path: Self.child(path, name))
                continue
            }
            fields.values[name] = value
            if let location = key.location { fields.keyLocations[name] = location }
            if let valueLocation = value.location {
                entries[Self.child(path, name)] = PolicySourceMap.Entry(key: key.location, value: valueLocation)
            }
        }
        return fields
    }

    mutating func missing(_ key: String, in fields: Fields, what: String, example: String) {
        guard !fields.suggested.contains(key) else { return }
        error("\(what): missing key \(key); for example \(example)", at: fields.location, path: fields.path(key))
    }

    mutating func list(_ node: DocumentNode, path: String, what: String) -> [DocumentNode]? {
        guard case .sequence(let items) = node.kind else {
            error(
                "\(what): expected a list (entries starting with \"- \"), got \(node.kindDescription)", at: node,
                path: path)
            return nil
        }
        for (index, item) in items.enumerated() {
            if let location = item.location {
                entries[Self.item(path, index)] = PolicySourceMap.Entry(key: nil, value: location)
            }
        }
        return items
    }

    /// Text of a scalar; plain numbers and booleans are taken as their text.
    mutating func text(_ node: DocumentNode, path: String, what: String) -> String? {
        guard case .scalar(let text, let plain) = node.kind else {
            error("\(what): expected text, got \(node.kindDescription)", at: node, path: path)
            return nil
        }
        if plain, Scalar(resolving: text, plain: true) == .null {
            error("\(what): a value is missing", at: node, path: path)
            return nil
        }
        return text
    }

    mutating func table(_ node: DocumentNode, path: String, what: String) -> QualifiedName? {
        guard let text = text(node, path: path, what: what) else { return nil }
        do {
            return try QualifiedName(parsing: text)
        } catch {
            self.error("\(what): \(error.message)", at: node, path: path)
            return nil
        }
    }

    mutating func column(_ node: DocumentNode, path: String, what: String) -> ColumnName? {
        guard let text = text(node, path: path, what: what) else { return nil }
        do {
            return try ColumnName(parsing: text)
        } catch {
            self.error("\(what): \(error.message)", at: node, path: path)
            return nil
        }
    }

    mutating func period(_ node: DocumentNode, path: String, what: String) -> RetentionPeriod? {
        guard let text = text(node, path: path, what: what) else { return nil }
        do {
            return try RetentionPeriod(parsing: text)
        } catch {
            self.error("\(what): \(error.message)", at: node, path: path)
            return nil
        }
    }

    mutating func scalar(_ node: DocumentNode, path: String, what: String) -> Scalar? {
        guard case .scalar(let text, let plain) = node.kind else {
            error(
                "\(what): expected a single value (text, number, true/false), got \(node.kindDescription)", at: node,
                path: path)
            return nil
        }
        return Scalar(resolving: text, plain: plain)
    }

    mutating func positiveInteger(_ node: DocumentNode, path: String, what: String, maximum: Int) -> Int? {
        if case .scalar(let text, true) = node.kind, case .integer(let value) = Scalar(resolving: text, plain: true),
            value > 0, value <= maximum
        {
            return Int(value)
        }
        error(
            "\(what): expected a positive integer up to \(maximum), got \(node.kindDescription)", at: node, path: path)
        return nil
    }
}
