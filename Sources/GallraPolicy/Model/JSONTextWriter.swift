/// Long JSON texts made of many small parts (a batch's lists of keys and digests, its audit records) written straight
/// into the string's own storage: their length is counted first, then each byte is written once, with no buffer
/// to grow and copy. Strings are escaped as ``JSONValue/canonicalText`` escapes them.
public struct JSONTextWriter {
    private let buffer: UnsafeMutableBufferPointer<UInt8>
    private var count = 0

    private init(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
        self.buffer = buffer
    }

    /// The text `write` writes in exactly `length` bytes (the sum of the parts' lengths, ``stringLength(_:)`` and
    /// ``decimalLength(_:)`` for the parts that need them).
    public static func text(length: Int, _ write: (inout JSONTextWriter) -> Void) -> String {
        String(unsafeUninitializedCapacity: length) { buffer in
            var writer = JSONTextWriter(buffer)
            write(&writer)
            // A shorter text would be cut by the count returned; a longer one stops at the bound check first.
            precondition(writer.count == length, "JSONTextWriter: \(writer.count) bytes written for \(length) counted")
            return writer.count
        }
    }

    /// The bytes ``appendString(_:)`` writes for `text`: its UTF-8 bytes, their escapes, and the quotes.
    public static func stringLength(_ text: String) -> Int {
        var text = text
        return text.withUTF8 { bytes in
            var length = bytes.count + 2
            guard needsEscape(bytes) else { return length }
            for byte in bytes where byte < 0x20 || byte == 0x22 || byte == 0x5c {
                switch byte {
                case 0x22, 0x5c, 0x0a, 0x0d, 0x09: length += 1
                default: length += 5
                }
            }
            return length
        }
    }

    /// The bytes ``appendDecimal(_:)`` writes for `number`.
    public static func decimalLength(_ number: Int) -> Int {
        var length = number < 0 ? 2 : 1
        var rest = number.magnitude
        while rest >= 10 {
            length += 1
            rest /= 10
        }
        return length
    }

    public mutating func append(_ byte: UInt8) {
        precondition(count < buffer.count, "JSONTextWriter: more bytes written than counted")
        buffer[count] = byte
        count += 1
    }

    /// Appends a literal's bytes as they are (JSON punctuation and member names).
    public mutating func append(literal: StaticString) {
        literal.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// Appends `text`'s UTF-8 bytes as they are, for text that needs no escaping.
    public mutating func append(unescaped text: String) {
        var text = text
        text.withUTF8 { append(contentsOf: $0) }
    }

    /// Appends `number` in decimal, as `String(number)` writes it.
    public mutating func appendDecimal(_ number: Int) {
        let length = Self.decimalLength(number)
        precondition(count + length <= buffer.count, "JSONTextWriter: more bytes written than counted")
        if number < 0 { buffer[count] = UInt8(ascii: "-") }
        var rest = number.magnitude
        var index = count + length
        repeat {
            index -= 1
            buffer[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        } while rest > 0
        count += length
    }

    /// Appends `text` as a JSON string, quoted and escaped as ``JSONValue/canonicalText`` writes it. Byte by byte is
    /// the same as scalar by scalar: every character escaped is ASCII, and no byte of a multi-byte UTF-8 sequence is.
    public mutating func appendString(_ text: String) {
        append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            guard Self.needsEscape(bytes) else {
                append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                switch byte {
                case 0x22: append(literal: #"\""#)
                case 0x5c: append(literal: #"\\"#)
                case 0x0a: append(literal: #"\n"#)
                case 0x0d: append(literal: #"\r"#)
                case 0x09: append(literal: #"\t"#)
                case ..<0x20:
                    append(literal: #"\u00"#)
                    append(Self.hexDigit(byte >> 4))
                    append(Self.hexDigit(byte & 0x0f))
                default: append(byte)
                }
            }
        }
        append(UInt8(ascii: "\""))
    }

    private mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) {
        precondition(count + bytes.count <= buffer.count, "JSONTextWriter: more bytes written than counted")
        guard let source = bytes.baseAddress, let target = buffer.baseAddress else { return }
        (target + count).initialize(from: source, count: bytes.count)
        count += bytes.count
    }

    /// Whether `bytes` hold a byte JSON escapes (`"`, `\`, a control character). A loop without an early exit:
    /// the compiler checks many bytes at once, and most texts (keys, digests, table names) need no escape.
    private static func needsEscape(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var found: UInt8 = 0
        for byte in bytes {
            found |= (byte < 0x20 ? 1 : 0) | (byte == 0x22 ? 1 : 0) | (byte == 0x5c ? 1 : 0)
        }
        return found != 0
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") - 10 + value
    }
}
