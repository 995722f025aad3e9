/// The keys that say why and when a policy processes data: `purpose:`, `legal_basis:` and `collect:`.
extension PolicyDecoder {
    /// `purpose:`: one line or a block of text, without the white space around it (a block scalar's final line
    /// break is layout, not content), at most ``Policy/maximumPurposeLength`` characters, no control
    /// characters but line breaks and tabs.
    mutating func purpose(_ node: DocumentNode, path: String) -> String? {
        guard let text = text(node, path: path, what: "purpose") else { return nil }
        let purpose = text.trimmingWhitespace
        if purpose.isEmpty {
            error(
                "purpose: the text is empty; say why the data is processed, e.g. purpose: Delivering orders and handling returns",
                at: node, path: path)
            return nil
        }
        if purpose.count > Policy.maximumPurposeLength {
            error(
                "purpose: \(purpose.count) characters, longer than the limit of \(Policy.maximumPurposeLength); state the purpose in a sentence or two and keep the details in the privacy notice",
                at: node, path: path)
            return nil
        }
        // Exports show the text to the subject, and PostgreSQL's jsonb cannot hold U+0000.
        let allowed: Set<Unicode.Scalar> = ["\n", "\r", "\t"]
        if purpose.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && !allowed.contains($0) }
        ) {
            error(
                "purpose: holds a control character; write plain text (line breaks and tabs are fine)", at: node,
                path: path)
            return nil
        }
        return purpose
    }

    /// `legal_basis:`: one of the six words of ``LegalBasis``, as written (lower case, underscores).
    mutating func legalBasis(_ node: DocumentNode, path: String) -> LegalBasis? {
        let names = LegalBasis.allCases.map(\.rawValue)
        let choices = "use \(names.dropLast().joined(separator: ", ")) or \(names.last ?? "") (GDPR Art. 6(1))"
        guard case .scalar(let text, let plain) = node.kind else {
            error("legal_basis: expected one word, got \(node.kindDescription); \(choices)", at: node, path: path)
            return nil
        }
        if plain, Scalar(resolving: text, plain: true) == .null {
            error("legal_basis: a value is missing; \(choices)", at: node, path: path)
            return nil
        }
        if let basis = LegalBasis(rawValue: text) { return basis }
        error(
            "legal_basis: \(text.quotedForMessage) is not a legal basis\(Suggestions.didYouMean(text, among: names)); \(choices)",
            at: node, path: path)
        return nil
    }

    /// `collect:`: `always` or `with_consent`.
    mutating func collection(_ node: DocumentNode, path: String) -> Policy.Collection? {
        let names = Policy.Collection.allCases.map(\.rawValue)
        let choices =
            "use with_consent (collect only while the subject's consent is in force) or always (the default)"
        guard case .scalar(let text, let plain) = node.kind else {
            error("collect: expected one word, got \(node.kindDescription); \(choices)", at: node, path: path)
            return nil
        }
        if plain, Scalar(resolving: text, plain: true) == .null {
            error("collect: a value is missing; \(choices)", at: node, path: path)
            return nil
        }
        if let collection = Policy.Collection(rawValue: text) { return collection }
        error(
            "collect: \(text.quotedForMessage) is not a way to collect\(Suggestions.didYouMean(text, among: names)); \(choices)",
            at: node, path: path)
        return nil
    }
}
