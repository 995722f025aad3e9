#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A result column: its name and type OID (``PostgresType``).
public struct PostgresColumn: Sendable, Hashable {
    public let name: String
    public let typeOID: UInt32

    public init(name: String, typeOID: UInt32) {
        self.name = name
        self.typeOID = typeOID
    }
}

/// The decoded result of one statement: columns, rows, command tag.
public struct PostgresResult: Sendable, RandomAccessCollection {
    public let columns: [PostgresColumn]
    public let rows: [PostgresRow]
    /// The command tag, e.g. `INSERT 0 3`, `SELECT 1`, `CREATE TABLE`.
    public let commandTag: String
    /// Rows affected (`PQcmdTuples`): inserted, updated, deleted, selected, ... 0 when the command does not say.
    public let rowsAffected: Int

    public var startIndex: Int { rows.startIndex }
    public var endIndex: Int { rows.endIndex }
    public subscript(position: Int) -> PostgresRow { rows[position] }

    /// The value in row `row` of the column named `column`; nil if there is no such row or column.
    public subscript(row: Int, column: String) -> PostgresValue? {
        rows.indices.contains(row) ? rows[row][column] : nil
    }
}

/// One result row; values by position or by column name.
public struct PostgresRow: Sendable, RandomAccessCollection {
    public let columns: [PostgresColumn]
    public let values: [PostgresValue]

    public var startIndex: Int { values.startIndex }
    public var endIndex: Int { values.endIndex }
    public subscript(position: Int) -> PostgresValue { values[position] }

    /// The value of the first column named `column`; nil if there is none.
    public subscript(column: String) -> PostgresValue? {
        columns.firstIndex { $0.name == column }.map { values[$0] }
    }

    /// The value of `column` as `T` (use an `Optional` type for nullable columns).
    public subscript<T: PostgresDecodable>(column: String, as type: T.Type) -> T {
        get throws { try decode(column, as: type) }
    }

    /// The value of `column` as `T`; throws `.decoding` if the column is missing, NULL for a non-optional `T`,
    /// or of another type. The error names the column and types, never the value.
    ///
    /// Inlinable, so that a caller decoding many rows gets it specialized for its `T`, not through the generic path.
    @inlinable
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let index = columns.firstIndex(where: { $0.name == column }) else {
            throw missingColumn(column)
        }
        guard let value = T(postgresValue: values[index]) else {
            throw wrongType(index, as: T.self)
        }
        return value
    }

    /// The error of ``decode(_:as:)`` for a column the result does not have (out of line: a throw is rare).
    @usableFromInline
    func missingColumn(_ column: String) -> PostgresError {
        PostgresError(.decoding, "the result has no column \"\(column)\"")
    }

    /// The error of ``decode(_:as:)`` for a value that is NULL or not a `type`; it names the column and types only.
    @usableFromInline
    func wrongType(_ index: Int, as type: any PostgresDecodable.Type) -> PostgresError {
        let found = values[index] == .null ? "NULL" : "a value of type OID \(columns[index].typeOID)"
        return PostgresError(.decoding, "column \"\(columns[index].name)\" holds \(found), which is not a \(type)")
    }
}

/// A Swift type a ``PostgresValue`` can be read as.
public protocol PostgresDecodable: Sendable {
    /// Nil if `postgresValue` is NULL (for non-optional types) or of an incompatible type.
    init?(postgresValue: PostgresValue)
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init?(postgresValue: PostgresValue) {
        if postgresValue == .null {
            self = .none
        } else if let value = Wrapped(postgresValue: postgresValue) {
            self = .some(value)
        } else {
            return nil
        }
    }
}

extension PostgresValue: PostgresDecodable {
    public init?(postgresValue: PostgresValue) { self = postgresValue }
}

extension Bool: PostgresDecodable {
    @inlinable
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.bool else { return nil }
        self = value
    }
}

extension Int64: PostgresDecodable {
    @inlinable
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.int64 else { return nil }
        self = value
    }
}

extension Int: PostgresDecodable {
    @inlinable
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.int else { return nil }
        self = value
    }
}

extension Int32: PostgresDecodable {
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.int64.flatMap({ Int32(exactly: $0) }) else { return nil }
        self = value
    }
}

extension Int16: PostgresDecodable {
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.int64.flatMap({ Int16(exactly: $0) }) else { return nil }
        self = value
    }
}

extension Double: PostgresDecodable {
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.double else { return nil }
        self = value
    }
}

extension String: PostgresDecodable {
    @inlinable
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.string else { return nil }
        self = value
    }
}

extension Decimal: PostgresDecodable {
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.decimal else { return nil }
        self = value
    }
}

extension UUID: PostgresDecodable {
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.uuid else { return nil }
        self = value
    }
}

extension Date: PostgresDecodable {
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.date else { return nil }
        self = value
    }
}

extension PostgresDate: PostgresDecodable {
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.postgresDate else { return nil }
        self = value
    }
}

extension PostgresTimestamp: PostgresDecodable {
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.postgresTimestamp else { return nil }
        self = value
    }
}

extension Array: PostgresDecodable where Element == UInt8 {
    public init?(postgresValue: PostgresValue) {
        guard let value = postgresValue.bytes else { return nil }
        self = value
    }
}
