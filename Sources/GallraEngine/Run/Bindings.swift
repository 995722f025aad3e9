import GallraPolicy
import GallraPostgres

/// Parameter binding: the runtime values of a planned statement's parameters.
extension Engine {
    /// Runtime values of one statement.
    struct Bindings {
        var asOf: PostgresTimestamp
        var policyName: String
        /// The live run's id (dry runs write nothing and leave it empty).
        var runID: String = ""
        /// The batch's keys (``PlanParameter/keys``), as ``PostgresArrayLiteral``.
        var keys: String = "{}"
        var afterKey: String?
        var upToKey: String?
        var limit: Int = 0
        var salt: String = ""
        var rows: String = "[]"
        /// A replay's subject keys (``PlanParameter/replayKeys``).
        var replayKeys: String = "{}"
    }

    static func values(_ statement: PlannedStatement, _ bindings: Bindings) -> [PostgresValue] {
        statement.parameters.map { parameter in
            switch parameter {
            case .asOf: .timestamptz(bindings.asOf)
            case .keys: .text(bindings.keys)
            case .afterKey: bindings.afterKey.map { .text($0) } ?? .null
            case .upToKey: bindings.upToKey.map { .text($0) } ?? .null
            case .limit: .int64(Int64(bindings.limit))
            case .salt: .text(bindings.salt)
            case .policyName: .text(bindings.policyName)
            case .runID: .text(bindings.runID)
            case .rows: .jsonb(bindings.rows)
            case .replayKeys: .text(bindings.replayKeys)
            case .interval(let text): .interval(text)
            case .json(let text): .jsonb(text)
            case .text(let text): text.map { .text($0) } ?? .null
            }
        }
    }

    /// A JSON array of strings.
    static func jsonArray(_ texts: [String]) -> String {
        JSONValue.stringArrayText(texts)
    }

    /// Subject keys as the batch binds them (``Bindings/keys``).
    static func keyArray(_ keys: [String]) -> String {
        PostgresArrayLiteral.text(keys)
    }
}
