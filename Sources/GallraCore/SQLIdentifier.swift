/// The one way gallra writes a name into SQL text: always quoted, so that case and reserved words survive.
///
/// Names are checked before they get here (the policy validator, the server's catalog); values never are
/// written into SQL text, they are bound parameters.
public enum SQLIdentifier {
    /// `"name"` with `"` doubled, as `PQescapeIdentifier` writes it: `x"y` → `"x""y"`.
    public static func quoted(_ name: String) -> String {
        var text = "\""
        text.reserveCapacity(name.utf8.count + 2)
        for character in name {
            text.append(character)
            if character == "\"" { text.append("\"") }
        }
        text.append("\"")
        return text
    }

    /// `"schema"."name"`, or just `"name"` without a schema.
    public static func quoted(schema: String?, name: String) -> String {
        (schema.map { quoted($0) + "." } ?? "") + quoted(name)
    }
}
