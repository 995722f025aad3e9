import GallraPolicy
import GallraPostgres

extension StoredPolicy {
    /// The stored document checked against `catalog`: its resolved plan, or why it cannot run.
    public func validate(against catalog: Catalog) -> Validation {
        let file = PolicyFile(parsing: stored.definition, path: "gallra.policy \(stored.name) v\(stored.version)")
        guard let parsed = file.policies.first else {
            return Validation(diagnostics: file.diagnostics, resolved: nil)
        }
        return GallraPolicy.validate(parsed, against: catalog)
    }
}

/// The stored policies a run acts on, each validated against the live catalog. One invalid policy never stops
/// the others: it is listed in ``invalid`` with why.
public struct RunnablePolicies: Sendable {
    public var policies: [RunPolicy] = []
    /// Policies that cannot run, with why (invalid rows, validation errors).
    public var invalid: [(name: String, reason: String)] = []
    /// The invalid policies whose every error is a privilege the connected role lacks: a GRANT, not an edit of
    /// the policy, lets them run.
    public var lackingPrivileges: Set<String> = []
    /// The validator's warnings per policy (missing indexes, cascades), for the plan.
    public var warnings: [String: [String]] = [:]
    /// How many policies are stored, whatever their state: tells "nothing stored" from "nothing active".
    public var stored = 0

    public init() {}

    /// Loads the stored policies named in `names` (all when empty), leaving out disabled ones and, unless
    /// `includeDrafts`, drafts. Throws ``UnknownPolicyError`` for a name that is not stored.
    public static func load(
        on connection: PostgresConnection, names: [String], includeDrafts: Bool
    ) async throws -> RunnablePolicies {
        let store = PolicyStore(connection: connection)
        let load = try await store.loadAll()
        let catalog = try await CatalogReader.read(on: connection)
        let wanted = Set(names)
        try UnknownPolicyError.check(names, stored: load.policies.map(\.stored.name) + load.invalid.map(\.name))
        var result = RunnablePolicies()
        result.stored = load.policies.count + load.invalid.count
        for invalid in load.invalid where wanted.isEmpty || wanted.contains(invalid.name) {
            result.invalid.append((invalid.name, invalid.reason))
        }
        for stored in load.policies where wanted.isEmpty || wanted.contains(stored.stored.name) {
            switch stored.policy.state {
            case .disabled: continue
            case .draft where !includeDrafts: continue
            default: break
            }
            let validation = stored.validate(against: catalog)
            if !validation.warnings.isEmpty {
                result.warnings[stored.stored.name] = validation.warnings.map(\.message)
            }
            if let resolved = validation.resolved {
                result.policies.append(
                    RunPolicy(resolved: resolved, version: stored.stored.version, state: stored.policy.state))
            } else {
                let reason = validation.errors.map(\.message).joined(separator: "; ")
                result.invalid.append((stored.stored.name, reason))
                if validation.errors.allSatisfy(\.lacksPrivilege) {
                    result.lackingPrivileges.insert(stored.stored.name)
                }
            }
        }
        return result
    }
}

/// A policy named for a run is not stored.
public struct UnknownPolicyError: Error, Sendable, CustomStringConvertible {
    public var name: String
    /// The names of the stored policies, for a did-you-mean.
    public var stored: [String]

    public init(name: String, stored: [String]) {
        self.name = name
        self.stored = stored
    }

    public var description: String {
        guard !stored.isEmpty else {
            return "no policy \(name) is stored; no policy is stored at all (gallra policy apply FILE stores them)"
        }
        let hint = Suggestions.didYouMean(name, among: stored)
        return "no policy \(name) is stored\(hint.isEmpty ? ";" : hint) gallra policy list shows the stored ones"
    }

    /// Throws for the first of `names` that is not among `stored`.
    public static func check(_ names: [String], stored: [String]) throws(UnknownPolicyError) {
        if let unknown = Set(names).subtracting(stored).sorted().first {
            throw UnknownPolicyError(name: unknown, stored: Set(stored).sorted())
        }
    }
}

import GallraCore

extension UnknownPolicyError: ExitStatusProviding {
    public var exitStatus: ExitStatus { .dataError }
}
