import Yams

/// Bounds on policy input, checked before and while parsing so that hostile files are refused cheaply.
public struct PolicyInputLimits: Sendable, Hashable {
    /// Largest file accepted, in bytes (1 MiB by default; policies are a few kilobytes).
    public var maximumBytes: Int
    /// Deepest nesting of mappings and lists accepted (a policy needs about six levels).
    public var maximumNestingDepth: Int

    /// The defaults: 1 MiB, 32 levels.
    public static let `default` = PolicyInputLimits(maximumBytes: 1 << 20, maximumNestingDepth: 32)

    /// Limits from their parts.
    public init(maximumBytes: Int, maximumNestingDepth: Int) {
        self.maximumBytes = maximumBytes
        self.maximumNestingDepth = maximumNestingDepth
    }
}

/// A parsed YAML or JSON node with its position. Scalars keep whether they were quoted: quoted text is
/// always a string, plain text is resolved by the YAML 1.2 core schema (so `no` is a string, not false).
struct DocumentNode: Sendable {
    enum Kind: Sendable {
        case scalar(String, plain: Bool)
        case sequence([DocumentNode])
        case mapping([(key: DocumentNode, value: DocumentNode)])
    }

    var kind: Kind
    var location: SourceLocation?

    /// A short name of the node's kind for messages ("a list", "a mapping", "\"text\"").
    var kindDescription: String {
        switch kind {
        case .scalar(let text, let plain):
            if plain, text.isEmpty { return "nothing" }
            let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
            return plain ? shown.quotedForMessage : shown.quotedForMessage + " (quoted)"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }
}

/// Turns bytes into document nodes, refusing what a policy file never needs: more than the size limit,
/// bytes that are not UTF-8, anchors and aliases (so that an alias bomb is refused before it is expanded),
/// YAML tags, and deep nesting.
enum DocumentLoader {
    static func load(
        _ bytes: [UInt8], file: String?, limits: PolicyInputLimits
    ) -> (documents: [DocumentNode], diagnostics: [PolicyDiagnostic]) {
        func refuse(_ message: String, at location: SourceLocation? = nil) -> ([DocumentNode], [PolicyDiagnostic]) {
            (
                [],
                [
                    PolicyDiagnostic(
                        location: location ?? SourceLocation(file: file, line: 1, column: 1), message: message)
                ]
            )
        }
        guard bytes.count <= limits.maximumBytes else {
            return refuse(
                "the file is \(bytes.count) bytes; policy files are limited to \(limits.maximumBytes) bytes. Split it into several files"
            )
        }
        if let offset = firstInvalidUTF8Offset(bytes) {
            let location = Self.location(ofByte: offset, in: bytes, file: file)
            return refuse(
                "the file is not UTF-8: invalid byte 0x\(String(bytes[offset], radix: 16, uppercase: true)) at byte offset \(offset). Save it as UTF-8",
                at: location)
        }
        let text = String(decoding: bytes, as: UTF8.self)
        if let anchor = AnchorScanner.firstAnchorOrAlias(in: bytes) {
            let location = Self.location(ofByte: anchor.offset, in: bytes, file: file)
            return refuse(
                "YAML \(anchor.isAlias ? "aliases (*name)" : "anchors (&name)") are not allowed in policy files; write the value out in full",
                at: location)
        }
        var documents: [DocumentNode] = []
        do {
            // No implicit typing by Yams (its resolver matches every plain scalar against regular expressions,
            // which load ICU): plain scalars are typed here, by the policy schema, from their text.
            let parser = try Parser(yaml: text, resolver: .basic)
            // Nodes are converted while the parser is alive: Yams keeps anchors weakly.
            while let root = try parser.nextRoot() {
                documents.append(try convert(root, file: file, depth: 1, limits: limits))
            }
        } catch let error as LoaderError {
            return refuse(error.message, at: error.location)
        } catch let error as YamlError {
            let (message, location) = describe(error, file: file, text: text)
            return refuse(message, at: location)
        } catch {
            return refuse("the file could not be read as YAML")
        }
        return (documents, [])
    }

    struct LoaderError: Error {
        var message: String
        var location: SourceLocation?
    }

    private static func convert(
        _ node: Node, file: String?, depth: Int, limits: PolicyInputLimits
    ) throws(LoaderError) -> DocumentNode {
        let location = node.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) }
        if node.anchor != nil {
            throw LoaderError(
                message: "YAML anchors (&name) are not allowed in policy files; write the value out in full",
                location: location)
        }
        guard depth <= limits.maximumNestingDepth else {
            throw LoaderError(
                message:
                    "the document nests deeper than \(limits.maximumNestingDepth) levels; a policy needs far fewer",
                location: location)
        }
        // The tag as written (Yams resolves implicit tags lazily, and only for hashed mapping keys).
        let tag: String =
            switch node {
            case .scalar(let scalar): scalar.tag.rawValue
            case .sequence(let sequence): sequence.tag.rawValue
            case .mapping(let mapping): mapping.tag.rawValue
            case .alias: ""
            }
        let explicitString = tag == "tag:yaml.org,2002:str" || tag == "!"
        if !explicitString, tag != "", !tag.hasPrefix("tag:yaml.org,2002:") {
            throw LoaderError(
                message: "YAML tags like \(tag.quotedForMessage) are not used in policy files; remove the tag",
                location: location)
        }
        switch node {
        case .scalar(let scalar):
            let plain = scalar.style == .plain && !explicitString
            return DocumentNode(kind: .scalar(scalar.string, plain: plain), location: location)
        case .sequence(let sequence):
            var items: [DocumentNode] = []
            for item in sequence {
                items.append(try convert(item, file: file, depth: depth + 1, limits: limits))
            }
            return DocumentNode(kind: .sequence(items), location: location)
        case .mapping(let mapping):
            var pairs: [(key: DocumentNode, value: DocumentNode)] = []
            for (key, value) in mapping {
                pairs.append(
                    (
                        try convert(key, file: file, depth: depth + 1, limits: limits),
                        try convert(value, file: file, depth: depth + 1, limits: limits)
                    ))
            }
            return DocumentNode(kind: .mapping(pairs), location: location)
        case .alias:
            throw LoaderError(
                message: "YAML aliases (*name) are not allowed in policy files; write the value out in full",
                location: location)
        }
    }

    private static func describe(_ error: YamlError, file: String?, text: String) -> (String, SourceLocation?) {
        func hint(_ problem: String, _ mark: Mark) -> String {
            let line = text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(mark.line - 1).first
            if line?.prefix(while: { $0 == " " || $0 == "\t" }).contains("\t") == true {
                return "; YAML indents with spaces only, replace the tab with spaces"
            }
            return Self.hint(problem)
        }
        func at(_ mark: Mark) -> SourceLocation { SourceLocation(file: file, line: mark.line, column: mark.column) }
        switch error {
        case .scanner(let context, let problem, let mark, _):
            return ("YAML syntax: \(problem)\(contextText(context))\(hint(problem, mark))", at(mark))
        case .parser(let context, let problem, let mark, _):
            return ("YAML syntax: \(problem)\(contextText(context))\(hint(problem, mark))", at(mark))
        case .composer(let context, let problem, let mark, _):
            return ("YAML structure: \(problem)\(contextText(context))", at(mark))
        case .reader(let problem, let offset, _, let yaml):
            let location = offset.map { Self.location(ofByte: $0, in: Array(yaml.utf8), file: file) }
            return ("the file cannot be read: \(problem)", location)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return (
                "key \(duplicates.joined(separator: ", ")) appears twice in the same mapping; keep one",
                at(context.mark)
            )
        default:
            return ("the file could not be read as YAML", nil)
        }
    }

    private static func contextText(_ context: YamlError.Context?) -> String {
        guard let context, !context.text.isEmpty else { return "" }
        return " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
    }

    private static func hint(_ problem: String) -> String {
        if problem.contains("mapping values are not allowed") {
            return "; check the indentation, or quote a value that contains \": \""
        }
        if problem.contains("did not find expected key") || problem.contains("did not find expected '-'") {
            return "; check that entries at the same level are indented alike"
        }
        return ""
    }

    static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    /// The line and column (in scalars) of a byte offset.
    static func location(ofByte offset: Int, in bytes: [UInt8], file: String?) -> SourceLocation {
        var line = 1
        var column = 1
        for byte in bytes[..<min(offset, bytes.count)] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return SourceLocation(file: file, line: line, column: column)
    }
}
