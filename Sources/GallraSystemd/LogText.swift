import Logging

/// Renders metadata values and escapes text for the log formats.
enum LogText {
    /// A metadata value as a journal field value or a `key=value` value: strings as they are,
    /// arrays and dictionaries as compact JSON (dictionary keys sorted).
    static func plain(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array, .dictionary: json(value)
        }
    }

    /// A metadata value as JSON: strings as JSON strings, arrays and dictionaries nested.
    static func json(_ value: Logger.MetadataValue) -> String {
        var output = ""
        appendJSON(value, to: &output)
        return output
    }

    static func appendJSON(_ value: Logger.MetadataValue, to output: inout String) {
        switch value {
        case .string(let string):
            appendJSONString(string, to: &output)
        case .stringConvertible(let convertible):
            appendJSONString(convertible.description, to: &output)
        case .array(let values):
            output += "["
            for (index, element) in values.enumerated() {
                if index > 0 { output += "," }
                appendJSON(element, to: &output)
            }
            output += "]"
        case .dictionary(let dictionary):
            output += "{"
            for (index, entry) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { output += "," }
                appendJSONString(entry.key, to: &output)
                output += ":"
                appendJSON(entry.value, to: &output)
            }
            output += "}"
        }
    }

    /// `text` as a JSON string literal (RFC 8259): quotes, backslashes and all control characters escaped.
    static func appendJSONString(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case "\u{00}"..."\u{1F}": output += "\\u00" + hex(scalar.value)
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    static func jsonString(_ text: String) -> String {
        var output = ""
        appendJSONString(text, to: &output)
        return output
    }

    /// Text for a single-line format: line breaks become `\n` and `\r`, other control characters
    /// `\u{XX}`, so that one event is one line and cannot forge another line or a terminal escape.
    static func singleLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var output = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case _ where isControl(scalar): output += "\\u{" + hex(scalar.value) + "}"
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output
    }

    /// `key=value` pairs: a value with spaces, quotes, `=`, control characters (or an empty one) is
    /// written as a JSON string so that the pairs can be split again.
    static func pairs(_ metadata: [(key: String, value: Logger.MetadataValue)]) -> String {
        metadata.map { entry in
            let value = plain(entry.value)
            let needsQuotes =
                value.isEmpty
                || value.unicodeScalars.contains { $0 == " " || $0 == "\"" || $0 == "=" || isControl($0) }
            return singleLine(entry.key) + "=" + (needsQuotes ? jsonString(value) : value)
        }.joined(separator: " ")
    }

    /// C0 controls except tab, DEL, and C1 controls (some terminals act on U+009B as an escape).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 && scalar != "\t" || (0x7F...0x9F).contains(scalar.value)
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return digits.count < 2 ? "0" + digits : digits
    }
}
