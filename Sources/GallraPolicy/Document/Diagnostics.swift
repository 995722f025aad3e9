/// A position in a policy file: 1-based line and column (columns count Unicode scalars).
public struct SourceLocation: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// The file as the user named it, or nil for text that came from elsewhere (the database, a test).
    public var file: String?
    /// 1-based line.
    public var line: Int
    /// 1-based column.
    public var column: Int

    /// A location from its parts.
    public init(file: String?, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`, as compilers write it (editors jump there).
    public var description: String { "\(file ?? "<policy>"):\(line):\(column)" }

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.file ?? "", lhs.line, lhs.column) < (rhs.file ?? "", rhs.line, rhs.column)
    }
}

/// One finding about a policy file: what is wrong, where, and how to fix it.
///
/// Messages quote the policy text (keys, table names, periods), never rows of the database.
public struct PolicyDiagnostic: Sendable, Hashable, CustomStringConvertible {
    /// Whether the policy can still be used.
    public enum Severity: String, Sendable, Hashable, Codable {
        /// The policy is not usable.
        case error
        /// The policy is usable, but probably not what was meant.
        case warning
    }

    /// Error or warning.
    public var severity: Severity
    /// Where, when known.
    public var location: SourceLocation?
    /// The place in the document, like `data[2].anonymize.email` (see ``PolicySourceMap``), when known.
    public var path: String?
    /// What is wrong and how to fix it.
    public var message: String
    /// The connected role lacks a privilege the policy needs: a GRANT fixes it, not an edit of the policy.
    public var lacksPrivilege = false

    /// A diagnostic from its parts.
    public init(
        severity: Severity = .error, location: SourceLocation?, path: String? = nil, message: String,
        lacksPrivilege: Bool = false
    ) {
        self.severity = severity
        self.location = location
        self.path = path
        self.message = message
        self.lacksPrivilege = lacksPrivilege
    }

    /// `file:line:column: error: message`.
    public var description: String {
        let place = location.map { "\($0): " } ?? ""
        return "\(place)\(severity.rawValue): \(message)"
    }
}

/// A policy file (or set of files) that cannot be used, with every error found in it.
public struct PolicyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The findings, errors first in file order; warnings may be included.
    public var diagnostics: [PolicyDiagnostic]

    /// An error from its diagnostics.
    public init(diagnostics: [PolicyDiagnostic]) {
        self.diagnostics = diagnostics
    }

    /// One line per diagnostic.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Where each part of a policy was written: the key and value positions of every entry of the document.
///
/// Paths name entries the way the document nests them: `policy`, `subject.table`, `expires.inactive_for`,
/// `expires.activity.table`, `except[0].column`, `except[1].where.status`, `schedule`, `data[2].table`,
/// `data[2].through[0]`, `data[2].anonymize.email`, `limits.batch_size`. Indices count entries as written.
public struct PolicySourceMap: Sendable, Hashable {
    /// Positions of one entry.
    public struct Entry: Sendable, Hashable {
        /// The key (`email` of `email: fake_email`), nil for list items and the document itself.
        public var key: SourceLocation?
        /// The value.
        public var value: SourceLocation
    }

    /// The file, or nil for a document that did not come from a file.
    public var file: String?
    /// Entries by path. The empty path is the document itself.
    public var entries: [String: Entry]

    /// An empty map.
    public init(file: String?, entries: [String: Entry] = [:]) {
        self.file = file
        self.entries = entries
    }

    /// Where the value at `path` was written, or the nearest enclosing entry that was.
    public func location(of path: String) -> SourceLocation? {
        var path = path
        while true {
            if let entry = entries[path] { return entry.value }
            guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else {
                return path.isEmpty ? nil : entries[""]?.value
            }
            path = String(path[..<cut])
        }
    }

    /// Where the key of `path` was written (the value's position for list items).
    public func keyLocation(of path: String) -> SourceLocation? {
        if let entry = entries[path] { return entry.key ?? entry.value }
        return location(of: path)
    }

    /// Where `schedule:` was written, for errors from `Schedule(parsing:)`.
    public var scheduleLocation: SourceLocation? { entries["schedule"]?.value }
}
