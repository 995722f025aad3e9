#if canImport(Glibc)
    import Glibc
#endif

/// Numbers as gallra prints them for people, without Foundation's `String(format:)` (which needs ICU).
public enum NumberText {
    /// `value` with `digits` digits after the point, rounded exactly as C's `%.*f` (and `String(format:)`) does.
    public static func fixed(_ value: Double, digits: Int) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let written = withVaList([Int32(digits), value]) { arguments in
            vsnprintf(&buffer, buffer.count, "%.*f", arguments)
        }
        guard written >= 0, Int(written) < buffer.count else { return String(value) }
        return String(decoding: buffer[..<Int(written)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `value` in decimal, padded with zeros on the left to at least `width` digits: `7` → `07`.
    public static func zeroPadded(_ value: Int, width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
