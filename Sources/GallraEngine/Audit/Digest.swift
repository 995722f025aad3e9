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
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
