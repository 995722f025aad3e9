#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraEngine
import GallraPolicy

/// One row of `gallra policy list`.
struct PolicyListRow: Encodable {
    var name: String
    var version: Int
    var state: Policy.State
    var valid: Bool
    var problem: String?
    var schedule: String?
    var nextRun: Date?
    var purpose: String?
    var legalBasis: LegalBasis?

    private enum CodingKeys: String, CodingKey {
        case name, version, state, valid, problem, schedule, nextRun, purpose, legalBasis
    }

    /// `purpose` and `legal_basis` are always there, null when unset, so that a reader sees the policy states none.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(version, forKey: .version)
        try container.encode(state, forKey: .state)
        try container.encode(valid, forKey: .valid)
        try container.encodeIfPresent(problem, forKey: .problem)
        try container.encodeIfPresent(schedule, forKey: .schedule)
        try container.encodeIfPresent(nextRun, forKey: .nextRun)
        try container.encode(purpose, forKey: .purpose)
        try container.encode(legalBasis, forKey: .legalBasis)
    }
}

/// One version in `gallra policy history`.
struct HistoryRow: Encodable {
    var version: Int
    var state: Policy.State
    var digest: String
    var appliedAt: Date
    var appliedBy: String
    var source: String
}

/// `gallra policy show --format json`.
struct ShowReport: Encodable {
    var name: String
    var version: Int
    var state: Policy.State
    var digest: String
    var source: String
    var appliedAt: Date
    var appliedBy: String
    var definition: Policy?
    var diagnostics: [String]
    var plan: ResolvedPolicy?
    /// The consent guards installed for the policy (`collect: with_consent`), empty when none is.
    var guards: [GuardReport]

    private enum CodingKeys: String, CodingKey {
        case name, version, state, digest, source, appliedAt, appliedBy, purpose, legalBasis, collect, definition
        case diagnostics, plan, guards
    }

    /// `purpose` and `legal_basis` of the definition, always there, null when unset.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(version, forKey: .version)
        try container.encode(state, forKey: .state)
        try container.encode(digest, forKey: .digest)
        try container.encode(source, forKey: .source)
        try container.encode(appliedAt, forKey: .appliedAt)
        try container.encode(appliedBy, forKey: .appliedBy)
        try container.encode(definition?.purpose, forKey: .purpose)
        try container.encode(definition?.legalBasis, forKey: .legalBasis)
        try container.encode(definition?.collection, forKey: .collect)
        try container.encodeIfPresent(definition, forKey: .definition)
        try container.encode(diagnostics, forKey: .diagnostics)
        try container.encodeIfPresent(plan, forKey: .plan)
        try container.encode(guards, forKey: .guards)
    }
}

/// One installed consent guard, for `gallra policy show`.
struct GuardReport: Encodable {
    var table: String
    var columns: [String]
    /// The trigger function, schema-qualified.
    var function: String
    var triggers: [String]
    /// The policy version that installed it.
    var policyVersion: Int
    /// Whether the function and both triggers are in the database.
    var intact: Bool

    init(_ installed: InstalledConsentGuard) {
        table = installed.table
        columns = installed.columns
        function = "gallra." + installed.functionName
        triggers = ["gallra_\(installed.functionName)_insert", "gallra_\(installed.functionName)_update"]
        policyVersion = installed.policyVersion
        intact = installed.intact
    }

    /// `shop.signup (customer_id): triggers gallra_consent_guard_…_insert and _update, installed by version 2`.
    var line: String {
        let place = "\(table) (\(columns.joined(separator: ", ")))"
        guard intact else {
            return "\(place): MISSING (the table or a trigger was dropped); apply the policy again to reinstall it"
        }
        return "\(place): triggers \(triggers[0]) and _update, installed by version \(policyVersion)"
    }
}
