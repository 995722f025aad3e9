import ArgumentParser
import GallraPolicy

/// `TABLE:KEY` from the command line: the table in SQL identifier syntax, schema-qualified.
struct SubjectReference: CustomStringConvertible {
    var table: QualifiedName
    var key: String

    /// Splits at the first colon outside double quotes. Errors name the table part only, never the key.
    init(parsing text: String) throws {
        var inQuotes = false
        var colon: String.Index?
        for index in text.indices {
            if text[index] == "\"" { inQuotes.toggle() }
            if text[index] == ":", !inQuotes {
                colon = index
                break
            }
        }
        guard let colon else {
            throw ValidationError("--subject takes TABLE:KEY, e.g. shop.customer:123 (a colon between them).")
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
        key = String(text[text.index(after: colon)...])
        guard !key.isEmpty else { throw ValidationError("--subject: the key after the colon is empty.") }
    }

    var description: String { "\(table.description):\(key)" }
}
