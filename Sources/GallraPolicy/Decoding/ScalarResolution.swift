extension Scalar {
    /// Resolves a scalar by the YAML 1.2 core schema: quoted text is a string; plain `null`/`~`/empty is null,
    /// `true`/`false` are booleans, integers and decimals are numbers, anything else (`yes`, `NO`) is text.
    init(resolving text: String, plain: Bool) {
        guard plain else {
            self = .string(text)
            return
        }
        switch text {
        case "", "~", "null", "Null", "NULL": self = .null
        case "true", "True", "TRUE": self = .boolean(true)
        case "false", "False", "FALSE": self = .boolean(false)
        default:
            if let decimal = Self.normalizedNumber(text) {
                if !decimal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let integer = Int64(decimal) {
                    self = .integer(integer)
                } else {
                    self = .decimal(decimal)
                }
            } else {
                self = .string(text)
            }
        }
    }

    /// The text of a YAML core-schema number as a JSON number (`.5` → `0.5`, `+3` → `3`), or nil if it is not one.
    static func normalizedNumber(_ text: String) -> String? {
        var scalars = Substring(text)
        var sign = ""
        if let first = scalars.first, first == "-" || first == "+" {
            sign = first == "-" ? "-" : ""
            scalars = scalars.dropFirst()
        }
        let integerPart = scalars.prefix(while: { $0.isASCII && $0.isNumber })
        scalars = scalars.dropFirst(integerPart.count)
        var fractionPart: Substring = ""
        var hasPoint = false
        if scalars.first == "." {
            hasPoint = true
            scalars = scalars.dropFirst()
            fractionPart = scalars.prefix(while: { $0.isASCII && $0.isNumber })
            scalars = scalars.dropFirst(fractionPart.count)
        }
        guard !integerPart.isEmpty || !fractionPart.isEmpty else { return nil }
        var exponent = ""
        if let e = scalars.first, e == "e" || e == "E" {
            scalars = scalars.dropFirst()
            var exponentSign = ""
            if let s = scalars.first, s == "-" || s == "+" {
                exponentSign = s == "-" ? "-" : ""
                scalars = scalars.dropFirst()
            }
            let digits = scalars.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty else { return nil }
            scalars = scalars.dropFirst(digits.count)
            exponent = "e" + exponentSign + digits
        }
        guard scalars.isEmpty else { return nil }
        var integer = String(integerPart.drop(while: { $0 == "0" }))
        if integer.isEmpty { integer = "0" }
        var result = sign + integer
        if hasPoint, !fractionPart.isEmpty { result += "." + fractionPart }
        if result == "-0" { result = "0" }
        return result + exponent
    }
}
