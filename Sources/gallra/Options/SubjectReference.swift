import ArgumentParser
import GallraEngine
import GallraPolicy
import GallraPostgres

/// `--subject` from the command line: `TABLE:KEY`, or `TABLE:COLUMN=VALUE` for a value that holds one row.
///
/// The table is in SQL identifier syntax, schema-qualified. The text splits at the first colon outside double
/// quotes; what follows is `COLUMN=VALUE` when it has an `=` outside double quotes and what precedes that `=` is
/// one SQL identifier (`email`, `"E-Mail"`), and a key otherwise. So `shop.customer:1234` is a key,
/// `shop.customer:email=ada@example.org` a column and its value (the value may hold `=`: only the first one
/// splits), and a key that holds `=` after an identifier (`abc==`) is written with its key column:
/// `shop.customer:id=abc==`. Errors name the table and the column only, never the key or the value.
struct SubjectReference {
    var table: QualifiedName
    var match: SubjectMatch

    init(parsing text: String) throws {
        guard let colon = Self.firstUnquoted(":", in: text[...]) else {
            throw ValidationError(
                "--subject takes TABLE:KEY or TABLE:COLUMN=VALUE, e.g. shop.customer:123 or "
                    + "shop.customer:email=ada@example.org (a colon after the table).")
        }
        let tableText = String(text[..<colon])
        do {
            table = try QualifiedName(parsing: tableText)
        } catch {
            throw ValidationError("--subject: \(error.message)")
        }
        guard table.schema != nil else {
            throw ValidationError(
                "--subject: name the table with its schema, as the policy's plan does: e.g. public.\(table.description):KEY"
            )
        }
        let rest = text[text.index(after: colon)...]
        guard !rest.isEmpty else { throw ValidationError("--subject: the key after the colon is empty.") }
        if let equals = Self.firstUnquoted("=", in: rest),
            let column = try? ColumnName(parsing: String(rest[..<equals]))
        {
            let value = String(rest[rest.index(after: equals)...])
            guard !value.isEmpty else {
                throw ValidationError("--subject: the value after \(table.description):\(column)= is empty.")
            }
            match = .column(column, value: value)
        } else {
            match = .key(String(rest))
        }
    }

    /// The key as typed, for commands that need no row (the audit trail names erased subjects); nil for
    /// `COLUMN=VALUE`, which only a row can turn into a key.
    var key: String? {
        if case .key(let key) = match { return key }
        return nil
    }

    /// The key as typed, or the key of the one row a `COLUMN=VALUE` finds (exit 66 or 65 as ``find(on:)``).
    func key(on connection: PostgresConnection) async throws -> String {
        if let key { return key }
        return try await find(on: connection).key
    }

    /// The subject's row, looked up in its table: exit 66 when none matches, 65 when several do or the value does
    /// not fit the column.
    func find(on connection: PostgresConnection) async throws -> FoundSubject {
        try await SubjectFinder.find(table: table, match, on: connection)
    }

    private static func firstUnquoted(_ wanted: Character, in text: Substring) -> String.Index? {
        var inQuotes = false
        for index in text.indices {
            if text[index] == "\"" { inQuotes.toggle() }
            if text[index] == wanted, !inQuotes { return index }
        }
        return nil
    }
}

extension FoundSubject {
    /// `TABLE:KEY`, the form the audit trail's digest is made of and the commands print.
    var reference: String { "\(table.description):\(key)" }
}
