/// RFC 4180 records for a CSV extract: a line per row, fields separated by commas, lines ended by CRLF.
///
/// A field is quoted when it holds a comma, a quote, CR or LF, its quotes doubled. NULL is an empty field left
/// unquoted and an empty text a quoted one (`""`): the rule of PostgreSQL's `COPY ... CSV`, so both stay apart.
enum CSVRecord {
    /// Why a row of the engine could not be read; the message never holds the row's values.
    struct MalformedRow: Error, CustomStringConvertible {
        var reason: String
        var description: String { "an extract row is not the JSON object expected: \(reason)" }
    }

    /// Appends the header record: the column names.
    static func appendHeader(_ names: [String], to out: inout [UInt8]) {
        for (index, name) in names.enumerated() {
            if index > 0 { out.append(comma) }
            appendText(Array(name.utf8), to: &out)
        }
        out.append(contentsOf: lineEnd)
    }

    /// Appends the record of one row, given as the engine writes it: a JSON object of the table's columns in
    /// order. Strings are written as their text; numbers, booleans, and the values of `jsonColumns` (json and
    /// jsonb, a string among them) as their JSON text, which is PostgreSQL's text of the value; null as an empty
    /// field (the engine's rows do not tell a json `null` from SQL NULL).
    static func appendRow(_ json: String, jsonColumns: [Bool], to out: inout [UInt8]) throws {
        var json = json
        try json.withUTF8 { bytes throws in
            var scanner = Scanner(bytes: bytes)
            try scanner.appendObject(jsonColumns: jsonColumns, to: &out)
        }
        out.append(contentsOf: lineEnd)
    }

    static let comma = UInt8(ascii: ",")
    static let quote = UInt8(ascii: "\"")
    static let lineEnd: [UInt8] = [13, 10]

    /// Appends a text field: quoted when empty or when it holds a comma, quote, CR or LF.
    static func appendText(_ text: some Collection<UInt8>, to out: inout [UInt8]) {
        let needsQuotes = text.isEmpty || text.contains { $0 == comma || $0 == quote || $0 == 13 || $0 == 10 }
        guard needsQuotes else {
            out.append(contentsOf: text)
            return
        }
        out.append(quote)
        for byte in text {
            if byte == quote { out.append(quote) }
            out.append(byte)
        }
        out.append(quote)
    }

    /// Reads one JSON object and writes its members' values as fields.
    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        mutating func appendObject(jsonColumns: [Bool], to out: inout [UInt8]) throws {
            skipWhitespace()
            try expect(UInt8(ascii: "{"))
            var fields = 0
            skipWhitespace()
            if peek() == UInt8(ascii: "}") {
                index += 1
            } else {
                while true {
                    skipWhitespace()
                    _ = try string()  // the column's name; fields follow the column order
                    skipWhitespace()
                    try expect(UInt8(ascii: ":"))
                    skipWhitespace()
                    guard fields < jsonColumns.count else {
                        throw MalformedRow(reason: "more values than the \(jsonColumns.count) columns")
                    }
                    if fields > 0 { out.append(comma) }
                    try appendValue(json: jsonColumns[fields], to: &out)
                    fields += 1
                    skipWhitespace()
                    let next = peek()
                    index += 1
                    if next == comma { continue }
                    if next == UInt8(ascii: "}") { break }
                    throw MalformedRow(reason: "expected , or } at byte \(index - 1)")
                }
            }
            guard fields == jsonColumns.count else {
                throw MalformedRow(reason: "\(fields) values for \(jsonColumns.count) columns")
            }
        }

        mutating func appendValue(json: Bool, to out: inout [UInt8]) throws {
            guard let first = peek() else { throw MalformedRow(reason: "the row ends inside a value") }
            switch first {
            case quote where json:
                let start = index
                _ = try string()
                appendText(bytes[start..<index], to: &out)
            case quote:
                appendText(try string(), to: &out)
            case UInt8(ascii: "n"):
                try literal("null")  // NULL: an empty, unquoted field
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let start = index
                try skipComposite()
                appendText(bytes[start..<index], to: &out)
            default:
                // A number, true or false: its JSON text, which needs no quotes.
                let start = index
                while let byte = peek(), byte != comma, byte != UInt8(ascii: "}"), !Self.isWhitespace(byte) {
                    index += 1
                }
                guard index > start else { throw MalformedRow(reason: "a value is missing at byte \(start)") }
                out.append(contentsOf: bytes[start..<index])
            }
        }

        /// Skips an object or array, strings inside it included.
        mutating func skipComposite() throws {
            var depth = 0
            repeat {
                guard let byte = peek() else { throw MalformedRow(reason: "the row ends inside a json value") }
                switch byte {
                case quote:
                    _ = try string()
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                default:
                    break
                }
                index += 1
            } while depth > 0
        }

        /// Reads a JSON string and returns its text as UTF-8.
        mutating func string() throws -> [UInt8] {
            try expect(quote)
            var text: [UInt8] = []
            while true {
                guard let byte = peek() else { throw MalformedRow(reason: "the row ends inside a string") }
                index += 1
                if byte == quote { return text }
                guard byte == UInt8(ascii: "\\") else {
                    text.append(byte)
                    continue
                }
                guard let escaped = peek() else { throw MalformedRow(reason: "the row ends inside an escape") }
                index += 1
                switch escaped {
                case UInt8(ascii: "b"): text.append(8)
                case UInt8(ascii: "f"): text.append(12)
                case UInt8(ascii: "n"): text.append(10)
                case UInt8(ascii: "r"): text.append(13)
                case UInt8(ascii: "t"): text.append(9)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar), peek() == UInt8(ascii: "\\"),
                        index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u")
                    {
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else {
                            throw MalformedRow(reason: "an unpaired surrogate at byte \(index)")
                        }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else {
                        throw MalformedRow(reason: "an unpaired surrogate at byte \(index)")
                    }
                    text.append(contentsOf: UTF8.encode(unicode)!)
                default: text.append(escaped)  // \" \\ \/
                }
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard index + 4 <= bytes.count else { throw MalformedRow(reason: "a short \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw MalformedRow(reason: "a \\u escape that is not hexadecimal at byte \(index)")
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }

        mutating func literal(_ word: StaticString) throws {
            let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
            guard index + expected.count <= bytes.count, bytes[index..<index + expected.count].elementsEqual(expected)
            else { throw MalformedRow(reason: "expected \(word) at byte \(index)") }
            index += expected.count
        }

        mutating func expect(_ byte: UInt8) throws {
            guard peek() == byte else {
                throw MalformedRow(reason: "expected \(Character(Unicode.Scalar(byte))) at byte \(index)")
            }
            index += 1
        }

        func peek() -> UInt8? {
            index < bytes.count ? bytes[index] : nil
        }

        mutating func skipWhitespace() {
            while let byte = peek(), Self.isWhitespace(byte) { index += 1 }
        }

        static func isWhitespace(_ byte: UInt8) -> Bool {
            byte == 32 || byte == 9 || byte == 10 || byte == 13
        }
    }
}
