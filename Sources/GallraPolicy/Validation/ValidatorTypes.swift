/// What the validator knows about PostgreSQL types: which strategies and values a column takes.
///
/// Types are recognised by `pg_type.typname` of the base type (`int8`, `timestamptz`, `varchar`); the
/// `format_type` spelling (`bigint`, `timestamp with time zone`) is accepted too.
enum ColumnTypes {
    static let integers: [String: ClosedRange<Int64>] = [
        "int2": Int64(Int16.min)...Int64(Int16.max), "smallint": Int64(Int16.min)...Int64(Int16.max),
        "int4": Int64(Int32.min)...Int64(Int32.max), "integer": Int64(Int32.min)...Int64(Int32.max),
        "int8": Int64.min...Int64.max, "bigint": Int64.min...Int64.max,
    ]
    static let dates: Set<String> = ["date"]
    static let timestamps: Set<String> = [
        "timestamp", "timestamptz", "timestamp without time zone", "timestamp with time zone",
    ]
    static let times: Set<String> = ["time", "timetz", "time without time zone", "time with time zone"]

    static func isInteger(_ column: CatalogColumn) -> Bool { integers[column.baseType] != nil }
    static func isDateOrTimestamp(_ column: CatalogColumn) -> Bool {
        column.category == .dateTime && !times.contains(column.baseType)
    }
    static func isBytea(_ column: CatalogColumn) -> Bool { column.baseType == "bytea" }

    /// "bigint", or "character varying(20)": the type for messages.
    static func describe(_ column: CatalogColumn) -> String { column.type }

    /// Why `value` does not fit the column's type, or nil when PostgreSQL will accept it (as far as the
    /// catalog tells: enum labels and date syntax are checked by PostgreSQL when the parameter is bound).
    static func misfit(_ value: Scalar, for column: CatalogColumn) -> String? {
        let type = describe(column)
        switch value {
        case .null:
            return nil
        case .boolean:
            return column.category == .boolean ? nil : "\(value) is a boolean, \(column.name) is \(type)"
        case .integer(let number):
            guard column.category == .numeric else {
                if column.category == .string {
                    return "\(value) is a number, \(column.name) is \(type); quote it to compare text: \"\(number)\""
                }
                return "\(value) is a number, \(column.name) is \(type)"
            }
            if let range = integers[column.baseType], !range.contains(number) {
                return "\(value) is out of range for \(column.name) (\(type))"
            }
            return nil
        case .decimal:
            guard column.category == .numeric else { return "\(value) is a number, \(column.name) is \(type)" }
            if isInteger(column) { return "\(value) is not a whole number, \(column.name) is \(type)" }
            return nil
        case .string(let text):
            switch column.category {
            case .numeric, .boolean:
                return "\(value) is text, \(column.name) is \(type); write the value without quotes"
            case .string:
                if let length = column.maximumLength, text.count > length {
                    return "\(value) has \(text.count) characters, \(column.name) is \(type)"
                }
                return nil
            case .enumeration:
                guard let labels = column.enumLabels, !labels.contains(text) else { return nil }
                let listed = labels.map { $0.quotedForMessage }.joined(separator: ", ")
                return "\(value) is not a label of the enum \(type) of \(column.name); its labels are \(listed)"
            default:
                return nil
            }
        }
    }

    /// The constant `redact` writes into a column of this type, or nil when the type has none.
    static func redactConstant(for column: CatalogColumn) -> Scalar? {
        switch column.category {
        case .string:
            let text = "[redacted]"
            if let length = column.maximumLength, length < text.count {
                return .string(String(repeating: "x", count: length))
            }
            return .string(text)
        case .numeric:
            return .integer(0)
        case .boolean:
            return .boolean(false)
        case .dateTime:
            if dates.contains(column.baseType) { return .string("1970-01-01") }
            if times.contains(column.baseType) { return .string("00:00:00") }
            return .string("1970-01-01 00:00:00+00")
        case .timespan:
            return .string("0 seconds")
        case .userDefined:
            switch column.baseType {
            case "uuid": return .string("00000000-0000-0000-0000-000000000000")
            case "json", "jsonb": return .string("{}")
            case "bytea": return .string("\\x")
            default: return nil
            }
        case .array:
            return .string("{}")
        default:
            return nil
        }
    }
}

extension CatalogColumn {
    /// The constant `redact` (without text) writes into this column, or nil when its type has none.
    public var redactConstant: Scalar? { ColumnTypes.redactConstant(for: self) }
}
