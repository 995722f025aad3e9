/// The anonymization strategies of `anonymize:`, in their short (`truncate(year)`) and mapping forms.
extension PolicyDecoder {
    static let strategyNames = ["null", "redact", "hash", "fake_email", "truncate", "set"]

    mutating func strategy(_ node: DocumentNode, path: String) -> Strategy? {
        let usage =
            "use null, redact, redact(\"text\"), hash, fake_email, truncate(year|month|day) or { set: value }"
        switch node.kind {
        case .sequence:
            error("anonymize: expected a strategy, got a list; \(usage)", at: node, path: path)
            return nil
        case .mapping(let pairs):
            guard pairs.count == 1, case .scalar(let name, _) = pairs[0].key.kind else {
                error(
                    "anonymize: a strategy mapping has one key, like { redact: \"[removed]\" } or { set: 0 }",
                    at: node, path: path)
                return nil
            }
            let value = pairs[0].value
            switch name {
            case "redact":
                guard let text = text(value, path: path, what: "redact") else { return nil }
                return .redact(text)
            case "set":
                guard let scalar = scalar(value, path: path, what: "set") else { return nil }
                return .set(scalar)
            case "truncate":
                guard let unit = text(value, path: path, what: "truncate") else { return nil }
                return truncation(unit, at: value, path: path)
            default:
                error(
                    "\(name): not a strategy with a value\(Suggestions.didYouMean(name, among: ["redact", "set", "truncate"])); \(usage)",
                    at: pairs[0].key, path: path)
                return nil
            }
        case .scalar(let text, let plain):
            if plain, Scalar(resolving: text, plain: true) == .null { return .null }
            let trimmed = text.trimmingWhitespace
            switch trimmed {
            case "null": return .null
            case "redact": return .redact(nil)
            case "hash": return .hash
            case "fake_email": return .fakeEmail
            case "truncate":
                error(
                    "truncate: needs a unit; write truncate(year), truncate(month) or truncate(day)", at: node,
                    path: path)
                return nil
            case "set":
                error("set: needs a value; write { set: 0 } or set(0)", at: node, path: path)
                return nil
            default: break
            }
            if trimmed.hasSuffix(")"), let open = trimmed.firstIndex(of: "(") {
                let name = String(trimmed[..<open]).trimmingWhitespace
                let argument = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
                    .trimmingWhitespace
                switch name {
                case "truncate":
                    return truncation(argument, at: node, path: path)
                case "redact":
                    return .redact(Self.unquote(argument) ?? argument)
                case "set":
                    if let text = Self.unquote(argument) { return .set(.string(text)) }
                    return .set(Scalar(resolving: argument, plain: true))
                default:
                    error(
                        "\(name.quotedForMessage): not a strategy\(Suggestions.didYouMean(name, among: Self.strategyNames)); \(usage)",
                        at: node, path: path)
                    return nil
                }
            }
            error(
                "\(trimmed.quotedForMessage): not a strategy\(Suggestions.didYouMean(trimmed, among: Self.strategyNames)); \(usage)",
                at: node, path: path)
            return nil
        }
    }

    mutating func truncation(_ unit: String, at node: DocumentNode, path: String) -> Strategy? {
        if let value = Strategy.TruncationUnit(rawValue: unit.lowercased()) { return .truncate(value) }
        let names = Strategy.TruncationUnit.allCases.map(\.rawValue)
        error(
            "truncate: \(unit.quotedForMessage) is not a unit\(Suggestions.didYouMean(unit, among: names)); write truncate(year), truncate(month) or truncate(day)",
            at: node, path: path)
        return nil
    }

    /// The text inside matching single or double quotes (a doubled quote stands for itself), or nil.
    static func unquote(_ text: String) -> String? {
        guard text.count >= 2, let quote = text.first, quote == "\"" || quote == "'", text.last == quote else {
            return nil
        }
        let inner = text.dropFirst().dropLast()
        var result = ""
        var index = inner.startIndex
        while index < inner.endIndex {
            let character = inner[index]
            result.append(character)
            let next = inner.index(after: index)
            index =
                character == quote && next < inner.endIndex && inner[next] == quote ? inner.index(after: next) : next
        }
        return result
    }
}
