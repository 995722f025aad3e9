import GallraPolicy
import GallraPostgres

/// What erasing one subject now would do, without recording a request or changing anything: `gallra erase
/// --dry-run`.
public struct ErasurePreview: Sendable, Hashable, Codable {
    /// The subject table as the policies name it.
    public var subjectTable: String
    /// The refusal the live command would meet, nil when it would erase.
    public var refusal: String?
    public var refusalKind: ErasureOutcome.Refusal?
    /// The subject under each active on-request policy over its table, in the order they would run, with the rows
    /// each data point would delete, anonymize or retain, as if its request were due.
    public var policies: [PolicyStanding]
}

extension Engine {
    /// Previews the erasure of subject `key` of `table`: the checks of ``processErasureRequests(_:options:)`` and,
    /// per on-request policy, the counts `gallra explain` gives (`Planner.subjectCounts`) with the rule holding
    /// for this subject as if requested. One `REPEATABLE READ READ ONLY` transaction; no audit key needed.
    public func previewErasure(table: String, key: String) async throws -> ErasurePreview {
        try await Schema.requireCurrent(on: connection)
        let runnable = try await RunnablePolicies.load(on: connection, names: [], includeDrafts: false)
        let policies = Self.onRequestPolicies(over: table, in: runnable.policies).map {
            RunPolicy(resolved: $0.resolved, version: $0.version, state: $0.state, requests: .assumed(key: key))
        }
        return try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            try await connection.execute("SET LOCAL jit = off")
            let asOf = try await Self.transactionStart(on: connection)
            var standings: [PolicyStanding] = []
            for policy in policies {
                standings.append(try await Self.standing(of: key, under: policy, asOf: asOf, on: connection))
            }
            let holds = try await Self.holdsInForce(
                table: table, key: key, policies: policies.map(\.resolved.name.rawValue), on: connection)
            let refusal = Self.refusal(
                table: table, key: key, policies: policies, standings: standings, holds: holds)
            return ErasurePreview(
                subjectTable: table, refusal: refusal?.text, refusalKind: refusal?.kind, policies: standings)
        }
    }
}

// Every key is written, null when unknown.
extension ErasurePreview {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(subjectTable, forKey: .subjectTable)
        try container.encode(refusal, forKey: .refusal)
        try container.encode(refusalKind, forKey: .refusalKind)
        try container.encode(policies, forKey: .policies)
    }
}
