import GallraCore
import GallraPolicy

/// Reading ledger lines back: each line must be exactly what ``LedgerLine/jsonText`` writes, field by field, or the
/// reader names the line and the field.
enum LedgerParsing {
    /// Why one line cannot be read.
    struct LineError: Error {
        var message: String
    }

    /// The line's value. `number` is 1-based (1 is the header).
    static func line(_ text: Substring, number: Int) throws(LineError) -> LedgerLine {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: String(text))
        } catch {
            throw LineError(message: "it is not a JSON object (\(error.description))")
        }
        guard case .object(let fields) = value else { throw LineError(message: "it is not a JSON object") }
        let reader = FieldReader(fields: fields, what: "the line")
        let kind = try reader.string("kind")
        switch kind {
        case "header":
            let format = try reader.integer("format", as: Int.self)
            guard format == LedgerHeader.currentFormat else {
                throw LineError(
                    message: "the ledger's format is \(format); this gallra reads format \(LedgerHeader.currentFormat)")
            }
            return .header(
                LedgerHeader(
                    format: format, database: try reader.string("database"),
                    systemIdentifier: try reader.string("system_identifier"),
                    keyCheck: try reader.optionalHex("key_check", length: 16),
                    createdAt: try reader.string("created_at")))
        case "block":
            let microseconds = try reader.integer("created_at_us", as: Int64.self)
            let createdAt = try reader.string("created_at")
            guard createdAt == LedgerTime.rfc3339(microsecondsSince1970: microseconds) else {
                throw LineError(message: "created_at \(createdAt) is not the time of created_at_us \(microseconds)")
            }
            guard case .array(let items)? = fields["records"] else {
                throw LineError(message: "field records is missing or not an array")
            }
            var records: [AuditRecord] = []
            records.reserveCapacity(items.count)
            for (index, item) in items.enumerated() {
                guard case .object(let recordFields) = item else {
                    throw LineError(message: "record \(index + 1) is not an object")
                }
                let record = FieldReader(fields: recordFields, what: "record \(index + 1)")
                guard case .array(let countItems)? = recordFields["counts"] else {
                    throw LineError(message: "record \(index + 1): field counts is missing or not an array")
                }
                var counts: [AuditCount] = []
                for countItem in countItems {
                    guard case .object(let countFields) = countItem else {
                        throw LineError(message: "record \(index + 1): a count is not an object")
                    }
                    let count = FieldReader(fields: countFields, what: "record \(index + 1)'s count")
                    let actionText = try count.string("action")
                    guard let action = AuditCount.Action(rawValue: actionText) else {
                        throw LineError(
                            message: "record \(index + 1): action \(actionText) is not deleted, anonymized or retained")
                    }
                    counts.append(
                        AuditCount(table: try count.string("table"), action: action, rows: try count.integer("rows")))
                }
                var decoded = AuditRecord(subjectDigest: try record.hex("digest", length: 64), counts: [])
                // Kept in the order written (the initializer sorts): the records hash covers that order.
                decoded.counts = counts
                records.append(decoded)
            }
            return .block(
                LedgerBlock(
                    sequence: try reader.integer("sequence", as: Int64.self), run: try reader.string("run"),
                    policy: try reader.string("policy"), policyVersion: try reader.integer("policy_version"),
                    subjectTable: try reader.string("subject_table"), createdAtMicroseconds: microseconds,
                    subjects: try reader.integer("subjects"), recordsHash: try reader.hex("records_hash", length: 64),
                    previousHash: try reader.hex("previous_hash", length: 64), hash: try reader.hex("hash", length: 64),
                    keyCheck: try reader.optionalHex("key_check", length: 16), records: records))
        case "restore":
            let resolutionText = try reader.string("resolution")
            guard let resolution = LedgerRestore.Resolution(rawValue: resolutionText) else {
                throw LineError(message: "resolution \(resolutionText) is not replay or accept")
            }
            return .restore(
                LedgerRestore(
                    at: try reader.string("at"), resolution: resolution,
                    databaseHead: try reader.position("database_head"), ledgerHead: try reader.position("ledger_head"),
                    by: try reader.string("by"),
                    replayed: fields["replayed"] == nil ? nil : try reader.integer("replayed")))
        default:
            throw LineError(message: "its kind \(kind) is not header, block or restore")
        }
    }
}

/// Typed access to a JSON object's members, with errors that name the field.
private struct FieldReader {
    let fields: [String: JSONValue]
    let what: String

    private func fail(_ name: String, _ problem: String) -> LedgerParsing.LineError {
        LedgerParsing.LineError(message: "\(what == "the line" ? "" : what + ": ")field \(name) \(problem)")
    }

    func string(_ name: String) throws(LedgerParsing.LineError) -> String {
        guard let value = fields[name] else { throw fail(name, "is missing") }
        guard case .string(let text) = value else { throw fail(name, "is not a string") }
        return text
    }

    func integer<T: FixedWidthInteger>(_ name: String, as type: T.Type = Int.self) throws(LedgerParsing.LineError)
        -> T
    {
        guard let value = fields[name] else { throw fail(name, "is missing") }
        guard case .number(let text) = value, let number = T(text), number >= 0 else {
            throw fail(name, "is not a whole number of zero or more")
        }
        return number
    }

    func hex(_ name: String, length: Int) throws(LedgerParsing.LineError) -> String {
        let text = try string(name)
        guard text.utf8.count == length, text.utf8.allSatisfy(Self.isLowerHex) else {
            throw fail(name, "is not \(length) lower-case hexadecimal digits")
        }
        return text
    }

    func optionalHex(_ name: String, length: Int) throws(LedgerParsing.LineError) -> String? {
        if case .null? = fields[name] { return nil }
        return try hex(name, length: length)
    }

    func position(_ name: String) throws(LedgerParsing.LineError) -> LedgerPosition {
        guard case .object(let members)? = fields[name] else { throw fail(name, "is missing or not an object") }
        let reader = FieldReader(fields: members, what: name)
        return LedgerPosition(
            sequence: try reader.integer("sequence", as: Int64.self), hash: try reader.hex("hash", length: 64))
    }

    static func isLowerHex(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte)
    }
}
