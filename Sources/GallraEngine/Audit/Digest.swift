import Crypto

/// SHA-256 and HMAC-SHA-256 (swift-crypto) as lower-case hex: the audit trail's chain and subject digests, the
/// salt of `hash` anonymization, and the policy store's version digests.
///
/// The test suite checks them against the published answers and against PostgreSQL's own `sha256()` and
/// pgcrypto's `hmac()`.
public enum Digest {
    /// SHA-256 of `bytes`.
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: bytes))
    }

    /// SHA-256 (hex) of `text`'s UTF-8 bytes: what PostgreSQL's `encode(sha256(convert_to(text, 'UTF8')), 'hex')`
    /// computes.
    public static func sha256Hex(_ text: String) -> String {
        hex(SHA256.hash(data: Array(text.utf8)))
    }

    /// HMAC-SHA-256 of `message` under `key`.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    /// Lower-case hexadecimal.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        var text = [UInt8]()
        // A digest's sequence may not tell its length: room for SHA-256's 32 bytes at least.
        text.reserveCapacity(max(bytes.underestimatedCount, 32) * 2)
        for byte in bytes {
            text.append(hexDigit(byte >> 4))
            text.append(hexDigit(byte & 0x0f))
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") - 10 + value
    }
}
