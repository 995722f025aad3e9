#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
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
}
