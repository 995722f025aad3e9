/// A JSON value as gallra's canonical form writes it: numbers keep their text, objects are written with sorted
/// keys. Policies are stored and digested in this form.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Compact JSON with keys sorted by their UTF-8 bytes, strings escaped minimally (`"`, `\`, control
    /// characters), other characters written as UTF-8. The same value always gives the same bytes.
    func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .number(let text): out += text
        case .string(let text): Self.writeString(text, to: &out)
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, key) in members.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if index > 0 { out += "," }
                Self.writeString(key, to: &out)
                out += ":"
                members[key]!.write(to: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ text: String, to out: inout String) {
        out += "\""
        // Most strings need no escape: appended whole.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5c }) {
            out += text
            out += "\""
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// `JSONValue.array(texts.map(JSONValue.string)).canonicalText`, written straight into the string's storage
    /// (``JSONTextWriter``): a batch binds lists of keys and digests in it.
    public static func stringArrayText(_ texts: [String]) -> String {
        var length = 2 + max(0, texts.count - 1)
        for text in texts { length += JSONTextWriter.stringLength(text) }
        return JSONTextWriter.text(length: length) { writer in
            writer.append(UInt8(ascii: "["))
            for (index, text) in texts.enumerated() {
                if index > 0 { writer.append(UInt8(ascii: ",")) }
                writer.appendString(text)
            }
            writer.append(UInt8(ascii: "]"))
        }
    }

    /// `JSONValue.array(values.map(JSONValue.bool)).canonicalText`, written straight into one buffer.
    public static func boolArrayText(_ values: [Bool]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(2 + 6 * values.count)
        out.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: value ? "true".utf8 : "false".utf8)
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    /// The value as a document node without positions, for decoding through the policy decoder.
    var node: DocumentNode {
        switch self {
        case .null: DocumentNode(kind: .scalar("null", plain: true))
        case .bool(let value): DocumentNode(kind: .scalar(value ? "true" : "false", plain: true))
        case .number(let text): DocumentNode(kind: .scalar(text, plain: true))
        case .string(let text): DocumentNode(kind: .scalar(text, plain: false))
        case .array(let items): DocumentNode(kind: .sequence(items.map(\.node)))
        case .object(let members):
            DocumentNode(
                kind: .mapping(
                    members.sorted { $0.key < $1.key }.map {
                        (key: DocumentNode(kind: .scalar($0.key, plain: false)), value: $0.value.node)
                    }))
        }
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .number(String(value))
        } else if let value = try? container.decode(Double.self) {
            self = .number(String(value))
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let text):
            if let integer = Int64(text) {
                try container.encode(integer)
            } else {
                try container.encode(Double(text) ?? 0)
            }
        case .string(let text): try container.encode(text)
        case .array(let items): try container.encode(items)
        case .object(let members): try container.encode(members)
        }
    }
}

// MARK: - The canonical document

extension Policy {
    /// The policy as canonical JSON: the document shape of a policy file, every setting spelt out (defaults
    /// included, so that saying a default and leaving it out give the same text), keys sorted, no spaces.
    /// Equal policies give identical bytes; store it, and digest its UTF-8 bytes to version policies.
    public var canonicalJSON: String {
        var out = ""
        json.write(to: &out)
        return out
    }

    var json: JSONValue {
        var members: [String: JSONValue] = [
            "policy": .string(name.rawValue),
            "state": .string(state.rawValue),
            "subject": subject.json,
            "expires": rule.json,
            "data": .array(dataPoints.map(\.json)),
            "limits": limits.json,
        ]
        if let description { members["description"] = .string(description) }
        // Only when set, so that a policy written before these keys existed keeps its canonical text and digest.
        if let purpose { members["purpose"] = .string(purpose) }
        if let legalBasis { members["legal_basis"] = .string(legalBasis.rawValue) }
        if collection != .always { members["collect"] = .string(collection.rawValue) }
        if !exemptions.isEmpty { members["except"] = .array(exemptions.map(\.json)) }
        if let schedule { members["schedule"] = .string(schedule) }
        return .object(members)
    }
}

extension Subject {
    var json: JSONValue { .object(["table": .string(table.description), "key": .string(key.description)]) }
}

extension Rule {
    var json: JSONValue {
        switch self {
        case .inactiveFor(let period, .column(let column)):
            return .object(["inactive_for": .string(period.description), "activity": .string(column.description)])
        case .inactiveFor(let period, .latestRow(let table, let column, let via)):
            var activity: [String: JSONValue] = [
                "table": .string(table.description), "column": .string(column.description),
            ]
            if let via { activity["via"] = .string(via.description) }
            return .object(["inactive_for": .string(period.description), "activity": .object(activity)])
        case .olderThan(let period, let created):
            return .object(["older_than": .string(period.description), "created": .string(created.description)])
        case .after(let period, let event):
            return .object(["after": .string(period.description), "event": .string(event.description)])
        case .consentRevoked(let grace, .gallra):
            return .object(["consent_revoked": .string(grace.description), "consent": .string("gallra")])
        case .consentRevoked(let grace, .table(let table, let revokedAt, let via)):
            var consent: [String: JSONValue] = [
                "table": .string(table.description), "revoked_at": .string(revokedAt.description),
            ]
            if let via { consent["via"] = .string(via.description) }
            return .object(["consent_revoked": .string(grace.description), "consent": .object(consent)])
        case .onRequest:
            return .string("on_request")
        }
    }
}

extension Exemption {
    var json: JSONValue {
        switch self {
        case .column(let column, let predicate):
            var members = predicate.json
            members["column"] = .string(column.description)
            return .object(members)
        case .relatedExists(let table, let through, let via, let conditions):
            var members: [String: JSONValue] = ["exists": .string(table.description)]
            if !through.isEmpty { members["through"] = .array(through.map { .string($0.description) }) }
            if let via { members["via"] = .string(via.description) }
            if !conditions.isEmpty {
                var conditionMembers: [String: JSONValue] = [:]
                for condition in conditions {
                    conditionMembers[condition.column.description] = .object(condition.predicate.json)
                }
                members["where"] = .object(conditionMembers)
            }
            return .object(members)
        }
    }
}

extension Exemption.Predicate {
    var json: [String: JSONValue] {
        switch self {
        case .is(.true): ["is": .bool(true)]
        case .is(.false): ["is": .bool(false)]
        case .is(.null): ["is": .null]
        case .equals(let value): ["equals": value.json]
        case .in(let values): ["in": .array(values.map(\.json))]
        case .notIn(let values): ["not_in": .array(values.map(\.json))]
        }
    }
}

extension Scalar {
    var json: JSONValue {
        switch self {
        case .string(let text): .string(text)
        case .integer(let value): .number(String(value))
        case .decimal(let text): .number(text)
        case .boolean(let value): .bool(value)
        case .null: .null
        }
    }
}

extension DataPoint {
    var json: JSONValue {
        var members: [String: JSONValue] = ["table": .string(table.description)]
        if !through.isEmpty { members["through"] = .array(through.map { .string($0.description) }) }
        if let via { members["via"] = .string(via.description) }
        switch action {
        case .delete:
            members["delete"] = .bool(true)
        case .anonymize(let columns):
            var strategies: [String: JSONValue] = [:]
            for column in columns { strategies[column.column.description] = column.strategy.json }
            members["anonymize"] = .object(strategies)
        case .deleteOrAnonymize(let columns):
            var strategies: [String: JSONValue] = [:]
            for column in columns { strategies[column.column.description] = column.strategy.json }
            members["delete"] = .bool(true)
            members["anonymize"] = .object(strategies)
        }
        return .object(members)
    }
}

extension Strategy {
    var json: JSONValue {
        switch self {
        case .null: .string("null")
        case .redact(nil): .string("redact")
        case .redact(let text?): .object(["redact": .string(text)])
        case .hash: .string("hash")
        case .fakeEmail: .string("fake_email")
        case .truncate(let unit): .string("truncate(\(unit.rawValue))")
        case .set(let value): .object(["set": value.json])
        }
    }
}

extension Limits {
    /// `parallel` appears only when it is not 1, so that a policy written before it existed keeps its canonical
    /// text, and so its version.
    var json: JSONValue {
        var fields: [String: JSONValue] = [
            "batch_size": .number(String(batchSize)),
            "max_subjects_per_run": .number(String(maxSubjectsPerRun)),
            "max_fraction": .number(Scalar.normalizedNumber(String(maxFraction)) ?? String(maxFraction)),
            "pause": .string(pause.description),
        ]
        if parallel != 1 { fields["parallel"] = .number(String(parallel)) }
        return .object(fields)
    }
}
