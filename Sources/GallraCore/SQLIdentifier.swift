/// The one way gallra writes a name into SQL text: always quoted, so that case and reserved words survive.
///
/// Names are checked before they get here (the policy validator, the server's catalog); values never are
/// written into SQL text, they are bound parameters.
public enum SQLIdentifier {
    /// `"name"` with `"` doubled, as `PQescapeIdentifier` writes it: `x"y` → `"x""y"`.
    public static func quoted(_ name: String) -> String {
        // Byte by byte: a `"` followed by a combining mark is one Character, and must still be doubled.
        var bytes: [UInt8] = [UInt8(ascii: "\"")]
        bytes.reserveCapacity(name.utf8.count + 2)
        for byte in name.utf8 {
            bytes.append(byte)
            if byte == UInt8(ascii: "\"") { bytes.append(byte) }
        }
        bytes.append(UInt8(ascii: "\""))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `"schema"."name"`, or just `"name"` without a schema.
    public static func quoted(schema: String?, name: String) -> String {
        (schema.map { quoted($0) + "." } ?? "") + quoted(name)
    }
}

/// Type names as `format_type` prints them, before gallra splices them into a cast.
public enum SQLTypeName {
    /// Letters, digits, `_`, spaces, parentheses, dots, commas, double quotes and array brackets: nothing that
    /// could end a cast (`text`, `character varying(20)`, `"Shop"."Mood"`, `integer[]`).
    public static func isCastable(_ type: String) -> Bool {
        !type.isEmpty
            && type.unicodeScalars.allSatisfy { scalar in
                switch scalar {
                case "a"..."z", "A"..."Z", "0"..."9", "_", " ", "(", ")", ".", ",", "\"", "[", "]": true
                default: false
                }
            }
    }
}
