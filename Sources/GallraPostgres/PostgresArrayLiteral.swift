/// PostgreSQL's text form of a one-dimensional array (`{"1","2"}`), to bind a list of values as one parameter.
///
/// Every element is double-quoted, with `"` and `\` escaped by a backslash, so that any text reads back as itself:
/// commas, braces, spaces, the empty string and the word `NULL` included (no element is ever SQL NULL). Bound as
/// `text` and cast to an array of any type in the statement (`$1::bigint[]`, `$1::uuid[]`), the literal is read
/// by that type's input once per element, which costs the server less than taking a JSON array apart.
public enum PostgresArrayLiteral {
    /// The literal of `elements`, in order.
    public static func text(_ elements: [String]) -> String {
        var length = 2 + max(0, elements.count - 1)
        for element in elements { length += element.utf8.count + 2 + escapes(element) }
        return String(unsafeUninitializedCapacity: length) { buffer in
            var at = 0
            func put(_ byte: UInt8) {
                buffer[at] = byte
                at += 1
            }
            put(UInt8(ascii: "{"))
            for (index, element) in elements.enumerated() {
                if index > 0 { put(UInt8(ascii: ",")) }
                put(UInt8(ascii: "\""))
                for byte in element.utf8 {
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { put(UInt8(ascii: "\\")) }
                    put(byte)
                }
                put(UInt8(ascii: "\""))
            }
            put(UInt8(ascii: "}"))
            return at
        }
    }

    /// How many bytes of `element` need a backslash before them.
    private static func escapes(_ element: String) -> Int {
        var count = 0
        for byte in element.utf8 where byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { count += 1 }
        return count
    }
}
