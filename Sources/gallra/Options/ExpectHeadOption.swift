import ArgumentParser

/// `--expect-head`: a block hash recorded outside the database (the journal's `GALLRA_AUDIT_HEAD`), whole or
/// its first 12 or more hexadecimal digits, for `audit verify` and `ledger verify`.
enum ExpectHeadOption {
    /// Refuses a value that cannot be such a hash, saying where `source` shows one.
    static func validate(_ value: String?, source: String) throws {
        guard let value, !(12...64).contains(value.count) || !value.allSatisfy(\.isHexDigit) else { return }
        throw ValidationError(
            "--expect-head \(value): not a block hash; give the hash as \(source) (64 hexadecimal digits), or its first "
                + "12 or more")
    }
}
