/// Journal field names for log metadata keys.
///
/// journald silently drops fields whose names break its rules (only `A`–`Z`, `0`–`9` and `_`, not
/// starting with `_` or a digit, at most 64 characters), so every name is made valid here.
public enum JournalFieldName {
    /// The longest field name journald accepts.
    public static let maximumLength = 64

    /// The prefix given to gallra's own metadata keys: `run.id` becomes `GALLRA_RUN_ID`.
    public static let defaultPrefix = "GALLRA_"

    /// Fields the journal handler writes itself; a metadata key with one of these names gets the
    /// prefix instead of duplicating or overriding the entry's own field.
    public static let reserved: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
    ]

    /// The journal field for a metadata key.
    ///
    /// A key that already is a valid journal field name (upper case, e.g. `MESSAGE_ID` or
    /// `SYSLOG_FACILITY`) is a deliberate journal field and passes through unchanged, unless it is
    /// one of the ``reserved`` names. Any other key (gallra's short dotted keys such as `run.id`) is
    /// upper-cased, every character outside `A`–`Z`, `0`–`9` becomes `_`, and `prefix` is put in front;
    /// the result is cut to ``maximumLength``.
    public static func forMetadataKey(_ key: String, prefix: String = defaultPrefix) -> String {
        if isValid(key) && !reserved.contains(key) {
            return key
        }
        var name = String.UnicodeScalarView((prefix + key).unicodeScalars.map(fieldScalar))
        if let first = name.first, !isValidFirst(first) {
            name.insert("X", at: name.startIndex)
        } else if name.isEmpty {
            name.append("X")
        }
        return String(String(name).unicodeScalars.prefix(maximumLength))
    }

    /// True when journald accepts `name` as a field name.
    public static func isValid(_ name: String) -> Bool {
        let scalars = name.unicodeScalars
        guard let first = scalars.first, scalars.count <= maximumLength, isValidFirst(first) else { return false }
        return scalars.allSatisfy { isUpperAlphanumeric($0) || $0 == "_" }
    }

    private static func isValidFirst(_ scalar: Unicode.Scalar) -> Bool {
        ("A"..."Z").contains(scalar)
    }

    private static func isUpperAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
    }

    /// `scalar` upper-cased when it is an ASCII letter, kept when it is a digit, `_` otherwise.
    private static func fieldScalar(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        switch scalar {
        case "A"..."Z", "0"..."9": scalar
        case "a"..."z": Unicode.Scalar(UInt8(scalar.value) - 32)
        default: "_"
        }
    }
}
