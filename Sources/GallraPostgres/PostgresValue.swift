#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A value sent to PostgreSQL as a bound parameter, or received in a result.
///
/// Parameters are bound with an explicit type OID (``typeOID``), in text format except `bytea` (binary), so
/// the server never guesses and no value is ever spliced into SQL text. Results are read in text format with
/// the session settings fixed at connect (`DateStyle=ISO`, `IntervalStyle=iso_8601`, `extra_float_digits=3`,
/// `TimeZone=UTC`, `bytea_output=hex`, `client_encoding=UTF8`) and decoded by column type; a type without a
/// case here (time, arrays, enums, ranges, ...) arrives as `.text` with PostgreSQL's text output.
public enum PostgresValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int16(Int16)
    case int32(Int32)
    case int64(Int64)
    case oid(UInt32)
    case float4(Float)
    case float8(Double)
    /// `numeric`, as PostgreSQL's exact text (`-12.3400`, `NaN`, `Infinity`): no digit or scale is lost.
    case numeric(String)
    /// `text`; also how `varchar`, `char(n)`, `name`, `"char"` and types without a case here are received.
    case text(String)
    case bytea([UInt8])
    case uuid(UUID)
    case date(PostgresDate)
    case timestamp(PostgresTimestamp)
    /// `timestamptz`: the UTC instant.
    case timestamptz(PostgresTimestamp)
    /// `interval`, as ISO 8601 text (`P1Y2M3DT4H5M6.5S`); any interval input syntax is accepted as a parameter.
    case interval(String)
    case json(String)
    case jsonb(String)

    /// The type OID this value is bound with (0, "let the server infer", for `.null`).
    public var typeOID: UInt32 {
        switch self {
        case .null: PostgresType.unknown
        case .bool: PostgresType.bool
        case .int16: PostgresType.int2
        case .int32: PostgresType.int4
        case .int64: PostgresType.int8
        case .oid: PostgresType.oid
        case .float4: PostgresType.float4
        case .float8: PostgresType.float8
        case .numeric: PostgresType.numeric
        case .text: PostgresType.text
        case .bytea: PostgresType.bytea
        case .uuid: PostgresType.uuid
        case .date: PostgresType.date
        case .timestamp: PostgresType.timestamp
        case .timestamptz: PostgresType.timestamptz
        case .interval: PostgresType.interval
        case .json: PostgresType.json
        case .jsonb: PostgresType.jsonb
        }
    }

    public var isNull: Bool { self == .null }

    public var bool: Bool? {
        if case .bool(let value) = self { value } else { nil }
    }

    /// Any integer column (`int2`, `int4`, `int8`, `oid`), widened.
    public var int64: Int64? {
        switch self {
        case .int16(let value): Int64(value)
        case .int32(let value): Int64(value)
        case .int64(let value): value
        case .oid(let value): Int64(value)
        default: nil
        }
    }

    public var int: Int? { int64.flatMap { Int(exactly: $0) } }

    /// `float4`, `float8`, or any integer, as a `Double`.
    public var double: Double? {
        switch self {
        case .float4(let value): Double(value)
        case .float8(let value): value
        default: int64.map(Double.init)
        }
    }

    /// `numeric` (or any integer) as a Foundation `Decimal`; nil for NaN/Infinity.
    public var decimal: Decimal? {
        switch self {
        case .numeric(let text): Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
        default: int64.map { Decimal($0) }
        }
    }

    /// The text of `text`, `numeric`, `interval`, `json` and `jsonb` values.
    public var string: String? {
        switch self {
        case .text(let value), .numeric(let value), .interval(let value), .json(let value), .jsonb(let value): value
        default: nil
        }
    }

    public var bytes: [UInt8]? {
        if case .bytea(let value) = self { value } else { nil }
    }

    public var uuid: UUID? {
        if case .uuid(let value) = self { value } else { nil }
    }

    public var postgresDate: PostgresDate? {
        if case .date(let value) = self { value } else { nil }
    }

    /// A `timestamp` or `timestamptz` value.
    public var postgresTimestamp: PostgresTimestamp? {
        switch self {
        case .timestamp(let value), .timestamptz(let value): value
        default: nil
        }
    }

    /// A `timestamptz` (or `timestamp`, read as UTC) as a Foundation `Date`; nil for ±infinity.
    public var date: Date? { postgresTimestamp?.date }
}

extension PostgresValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByStringLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int64(value) }
    public init(stringLiteral value: String) { self = .text(value) }
}

/// Built-in type OIDs (`pg_type.oid`, fixed since PostgreSQL 7.x).
public enum PostgresType {
    public static let unknown: UInt32 = 0
    public static let bool: UInt32 = 16
    public static let bytea: UInt32 = 17
    public static let char: UInt32 = 18
    public static let name: UInt32 = 19
    public static let int8: UInt32 = 20
    public static let int2: UInt32 = 21
    public static let int4: UInt32 = 23
    public static let text: UInt32 = 25
    public static let oid: UInt32 = 26
    public static let json: UInt32 = 114
    public static let float4: UInt32 = 700
    public static let float8: UInt32 = 701
    public static let unknownLiteral: UInt32 = 705
    public static let bpchar: UInt32 = 1042
    public static let varchar: UInt32 = 1043
    public static let date: UInt32 = 1082
    public static let timestamp: UInt32 = 1114
    public static let timestamptz: UInt32 = 1184
    public static let interval: UInt32 = 1186
    public static let numeric: UInt32 = 1700
    public static let uuid: UInt32 = 2950
    public static let jsonb: UInt32 = 3802
}

// MARK: - Wire text

extension PostgresValue {
    /// How a parameter goes on the wire: text (NUL-terminated by the caller), or binary bytes.
    enum Parameter {
        case null
        case text(String)
        case binary([UInt8])
    }

    var parameter: Parameter {
        switch self {
        case .null: .null
        case .bool(let value): .text(value ? "t" : "f")
        case .int16(let value): .text(String(value))
        case .int32(let value): .text(String(value))
        case .int64(let value): .text(String(value))
        case .oid(let value): .text(String(value))
        case .float4(let value): .text(Self.floatText(Double(value), shortest: value.description))
        case .float8(let value): .text(Self.floatText(value, shortest: value.description))
        case .numeric(let value), .text(let value), .interval(let value), .json(let value), .jsonb(let value):
            .text(value)
        case .bytea(let value): .binary(value)
        case .uuid(let value): .text(value.uuidString)
        case .date(let value): .text(value.description)
        case .timestamp(let value): .text(value.description)
        case .timestamptz(let value): .text(value.timestamptzText)
        }
    }

    private static func floatText(_ value: Double, shortest: String) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        return shortest  // Swift prints the shortest text that reads back to the same value
    }

    /// Decodes one result field from its text-format bytes, by column type; nil if the text is not valid for it.
    static func decode(text bytes: UnsafeBufferPointer<UInt8>, typeOID: UInt32) -> PostgresValue? {
        let text = String(decoding: bytes, as: UTF8.self)
        switch typeOID {
        case PostgresType.bool:
            switch text {
            case "t": return .bool(true)
            case "f": return .bool(false)
            default: return nil
            }
        case PostgresType.int2: return Int16(text).map(PostgresValue.int16)
        case PostgresType.int4: return Int32(text).map(PostgresValue.int32)
        case PostgresType.int8: return Int64(text).map(PostgresValue.int64)
        case PostgresType.oid: return UInt32(text).map(PostgresValue.oid)
        case PostgresType.float4: return parseFloat(text).map { .float4(Float($0.text) ?? Float($0.value)) }
        case PostgresType.float8: return parseFloat(text).map { .float8($0.value) }
        case PostgresType.numeric: return .numeric(text)
        case PostgresType.bytea: return decodeBytea(bytes).map(PostgresValue.bytea)
        case PostgresType.uuid: return UUID(uuidString: text).map(PostgresValue.uuid)
        case PostgresType.date: return PostgresDate(postgresText: text[...]).map(PostgresValue.date)
        case PostgresType.timestamp: return PostgresTimestamp(postgresText: text[...]).map(PostgresValue.timestamp)
        case PostgresType.timestamptz:
            return PostgresTimestamp(postgresText: text[...]).map(PostgresValue.timestamptz)
        case PostgresType.interval: return .interval(text)
        case PostgresType.json: return .json(text)
        case PostgresType.jsonb: return .jsonb(text)
        default: return .text(text)
        }
    }

    private static func parseFloat(_ text: String) -> (text: String, value: Double)? {
        switch text {
        case "NaN": return (text, .nan)
        case "Infinity": return ("inf", .infinity)
        case "-Infinity": return ("-inf", -.infinity)
        default: return Double(text).map { (text, $0) }
        }
    }

    /// `bytea` text output: hex (`\x0a0b`, the default since 9.0) or the older escape format (`\\`, `\ooo`).
    private static func decodeBytea(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let backslash = UInt8(ascii: "\\")
        if bytes.count >= 2, bytes[0] == backslash, bytes[1] == UInt8(ascii: "x") {
            guard bytes.count % 2 == 0 else { return nil }
            var out = [UInt8]()
            out.reserveCapacity((bytes.count - 2) / 2)
            var i = 2
            while i < bytes.count {
                guard let high = hexValue(bytes[i]), let low = hexValue(bytes[i + 1]) else { return nil }
                out.append(high << 4 | low)
                i += 2
            }
            return out
        }
        var out = [UInt8]()
        var i = 0
        while i < bytes.count {
            if bytes[i] != backslash {
                out.append(bytes[i])
                i += 1
            } else if i + 1 < bytes.count, bytes[i + 1] == backslash {
                out.append(backslash)
                i += 2
            } else if i + 3 < bytes.count, let value = octalValue(bytes[i + 1...i + 3]) {
                out.append(value)
                i += 4
            } else {
                return nil
            }
        }
        return out
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func octalValue(_ digits: Slice<UnsafeBufferPointer<UInt8>>) -> UInt8? {
        var value = 0
        for c in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(c) else { return nil }
            value = value * 8 + Int(c - UInt8(ascii: "0"))
        }
        return UInt8(exactly: value)
    }
}
