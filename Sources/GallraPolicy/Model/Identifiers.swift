import GallraCore

/// Why a text is not a PostgreSQL identifier.
///
/// The message quotes the offending text: it comes from a policy file, not from table rows.
public struct IdentifierError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text that was given.
    public var text: String
    /// What is wrong and how to write it instead.
    public var message: String

    public var description: String { message }
}

/// PostgreSQL's limit on identifier length in bytes (NAMEDATALEN - 1).
public let maximumIdentifierBytes = 63

/// A column name as PostgreSQL stores it in the catalog (unquoted input folded to lower case).
///
/// Identifiers are data here: the SQL layer quotes them; they are never spliced into SQL text.
public struct ColumnName: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The exact name, as in `pg_attribute.attname`.
    public var name: String

    /// A name taken exactly as given (no folding, no validation): for names read from the catalog.
    public init(_ name: String) {
        self.name = name
    }

    /// Parses PostgreSQL identifier syntax: `last_seen_at`, `LastSeen` (folded to `lastseen`), `"LastSeen"`.
    public init(parsing text: String) throws(IdentifierError) {
        let parts = try IdentifierSyntax.parse(text, kind: "column name")
        guard parts.count == 1 else {
            throw IdentifierError(
                text: text,
                message:
                    "not a column name: \(text.quotedForMessage) (a column is one identifier; quote it if it contains a dot: \"a.b\")"
            )
        }
        self.name = parts[0]
    }

    /// The name in identifier syntax, quoted only where PostgreSQL needs it to read back the same name.
    public var description: String { rendered(for: .policy) }

    public static func < (lhs: ColumnName, rhs: ColumnName) -> Bool {
        lhs.name.utf8.lexicographicallyPrecedes(rhs.name.utf8)
    }
}

/// A table name, optionally schema-qualified: `shop.customer`, `customer`, `"Mixed Case"."Order Items"`.
///
/// Without a schema the catalog resolves the table later (through the search path of the connection).
public struct QualifiedName: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The exact schema name, or nil when the catalog resolves it.
    public var schema: String?
    /// The exact table name, as in `pg_class.relname`.
    public var name: String

    /// A name taken exactly as given (no folding, no validation): for names read from the catalog.
    public init(schema: String?, name: String) {
        self.schema = schema
        self.name = name
    }

    /// Parses PostgreSQL identifier syntax for a table: one or two identifiers separated by a dot.
    public init(parsing text: String) throws(IdentifierError) {
        let parts = try IdentifierSyntax.parse(text, kind: "table name")
        switch parts.count {
        case 1:
            self.init(schema: nil, name: parts[0])
        case 2:
            self.init(schema: parts[0], name: parts[1])
        default:
            throw IdentifierError(
                text: text,
                message:
                    "not a table name: \(text.quotedForMessage) has \(parts.count) parts; write schema.table or table"
            )
        }
    }

    /// The name in identifier syntax, quoted only where needed; parsing it gives back the same name.
    public var description: String { rendered(for: .policy) }

    public static func < (lhs: QualifiedName, rhs: QualifiedName) -> Bool {
        let left = lhs.schema ?? ""
        let right = rhs.schema ?? ""
        if left != right { return left.utf8.lexicographicallyPrecedes(right.utf8) }
        return lhs.name.utf8.lexicographicallyPrecedes(rhs.name.utf8)
    }
}

extension String {
    /// The text in double quotes for an error message, with control characters escaped.
    var quotedForMessage: String {
        var out = "\""
        for scalar in unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// PostgreSQL's lexical rules for identifiers (https://www.postgresql.org/docs/current/sql-syntax-lexical.html).
enum IdentifierSyntax {
    /// Splits dotted identifier syntax into exact names: unquoted parts fold ASCII letters to lower
    /// case (as PostgreSQL does in UTF-8), quoted parts keep their text with `""` meaning `"`.
    static func parse(_ text: String, kind: String) throws(IdentifierError) -> [String] {
        func failure(_ why: String) -> IdentifierError {
            IdentifierError(text: text, message: "not a \(kind): \(text.quotedForMessage) (\(why))")
        }
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { throw failure("it is empty") }
        var parts: [String] = []
        var index = 0
        while true {
            // One part.
            guard index < scalars.count else { throw failure("a name is missing after the dot") }
            var part = ""
            if scalars[index] == "\"" {
                index += 1
                var closed = false
                while index < scalars.count {
                    let scalar = scalars[index]
                    if scalar == "\"" {
                        if index + 1 < scalars.count, scalars[index + 1] == "\"" {
                            part.unicodeScalars.append("\"")
                            index += 2
                            continue
                        }
                        closed = true
                        index += 1
                        break
                    }
                    if scalar.value == 0 { throw failure("it contains a NUL character") }
                    part.unicodeScalars.append(scalar)
                    index += 1
                }
                guard closed else { throw failure("a quoted name is not closed with \"") }
                guard !part.isEmpty else { throw failure("\"\" is an empty name") }
            } else {
                guard isIdentifierStart(scalars[index]) else {
                    if scalars[index] == "." {
                        throw failure("a name is missing before the dot")
                    }
                    throw failure(
                        "a name starts with a letter or _, or is quoted like \"My Table\"")
                }
                while index < scalars.count, isIdentifierPart(scalars[index]) {
                    let scalar = scalars[index]
                    if scalar.value >= 0x41 && scalar.value <= 0x5A {
                        part.unicodeScalars.append(Unicode.Scalar(scalar.value + 0x20)!)
                    } else {
                        part.unicodeScalars.append(scalar)
                    }
                    index += 1
                }
            }
            guard part.utf8.count <= maximumIdentifierBytes else {
                throw failure(
                    "\(part.quotedForMessage) is \(part.utf8.count) bytes; PostgreSQL names are at most \(maximumIdentifierBytes)"
                )
            }
            parts.append(part)
            if index == scalars.count { break }
            guard scalars[index] == "." else {
                throw failure(
                    "unexpected \(String(scalars[index]).quotedForMessage) at character \(index + 1); quote names that contain it"
                )
            }
            index += 1
            guard parts.count < 3 else { throw failure("more than two dotted parts") }
        }
        guard parts.count <= 2 else { throw failure("more than two dotted parts") }
        return parts
    }

    static func isIdentifierStart(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x41...0x5A, 0x61...0x7A, 0x5F: true
        case 0x80...: true  // PostgreSQL accepts any non-ASCII character in an unquoted name
        default: false
        }
    }

    static func isIdentifierPart(_ scalar: Unicode.Scalar) -> Bool {
        isIdentifierStart(scalar) || (0x30...0x39).contains(scalar.value) || scalar == "$"
    }

    /// Where a rendered name is read back: SQL text (the statements gallra proposes, the plans it shows) also needs
    /// reserved words quoted (`shop."order"`); a policy file reads them as names.
    enum Reader: Sendable {
        case policy
        case sql
    }

    /// The one display form of a name: quoted (``SQLIdentifier/quoted(_:)``) unless it reads back unchanged
    /// without quotes (lower-case ASCII letters, digits, _, $; for SQL, no reserved word).
    static func render(_ name: String, for reader: Reader = .policy) -> String {
        var needsQuotes = name.isEmpty
        for (offset, scalar) in name.unicodeScalars.enumerated() {
            let plain: Bool =
                switch scalar.value {
                case 0x61...0x7A, 0x5F: true
                case 0x30...0x39, 0x24: offset > 0
                default: false
                }
            if !plain {
                needsQuotes = true
                break
            }
        }
        if reader == .sql, reservedWords.contains(name) { needsQuotes = true }
        return needsQuotes ? SQLIdentifier.quoted(name) : name
    }

    /// PostgreSQL's reserved key words (including those allowed only as function or type names).
    static let reservedWords: Set<String> = [
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization", "binary",
        "both", "case", "cast", "check", "collate", "collation", "column", "concurrently", "constraint", "create",
        "cross", "current_catalog", "current_date", "current_role", "current_schema", "current_time",
        "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end",
        "except", "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant", "group", "having",
        "ilike", "in", "initially", "inner", "intersect", "into", "is", "isnull", "join", "lateral", "leading",
        "left", "like", "limit", "localtime", "localtimestamp", "natural", "not", "notnull", "null", "offset",
        "on", "only", "or", "order", "outer", "overlaps", "placing", "primary", "references", "returning",
        "right", "select", "session_user", "similar", "some", "symmetric", "system_user", "table", "tablesample",
        "then", "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "verbose", "when",
        "where", "window", "with",
    ]
}

extension QualifiedName {
    /// The name in identifier syntax for `reader`, each part quoted only where needed.
    func rendered(for reader: IdentifierSyntax.Reader) -> String {
        (schema.map { IdentifierSyntax.render($0, for: reader) + "." } ?? "")
            + IdentifierSyntax.render(name, for: reader)
    }
}

extension ColumnName {
    /// The name in identifier syntax for `reader`, quoted only where needed.
    func rendered(for reader: IdentifierSyntax.Reader) -> String { IdentifierSyntax.render(name, for: reader) }
}

extension [ColumnName] {
    /// `a, "B", c`: the names for `reader`, comma-separated.
    func rendered(for reader: IdentifierSyntax.Reader) -> String {
        map { $0.rendered(for: reader) }.joined(separator: ", ")
    }
}
