/// A subject digest (HMAC-SHA-256, ``SubjectDigester``) as its 32 bytes: four words, hashed and compared without the
/// 64-character hex text, so that a set of 100,000 wanted digests stays small and a table's keys are matched against
/// it cheaply.
public struct SubjectDigestValue: Sendable, Hashable {
    private let words: (UInt64, UInt64, UInt64, UInt64)

    /// The value of 32 bytes.
    init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32, "a subject digest has 32 bytes")
        words = (
            bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
            bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
            bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
            bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        )
    }

    /// The value of a digest's hex text (64 hex digits, either case); nil for anything else.
    public init?(hex: some StringProtocol) {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in 0..<32 {
            guard let high = Self.nibble(digits[2 * index]), let low = Self.nibble(digits[2 * index + 1]) else {
                return nil
            }
            bytes[index] = high << 4 | low
        }
        self = bytes.withUnsafeBytes { SubjectDigestValue(bytes: $0) }
    }

    /// The lower-case hex text, as the audit trail stores digests.
    public var hex: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for word in [words.0, words.1, words.2, words.3] {
            withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) }
        }
        return Digest.hex(bytes)
    }

    public static func == (lhs: SubjectDigestValue, rhs: SubjectDigestValue) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
            && lhs.words.3 == rhs.words.3
    }

    public func hash(into hasher: inout Hasher) {
        // The digest is uniformly distributed already: one word is enough for the table.
        hasher.combine(words.0)
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
