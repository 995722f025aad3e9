import GallraEngine
import GallraPolicy

/// What `policy apply` or `policy disable` did to one policy.
struct ChangeReport: Encodable {
    /// What `apply` or `disable` did to a policy.
    enum Change: String, Encodable {
        case created
        case updated
        case unchanged
    }

    var policy: String
    var change: Change
    var version: Int
    var previousVersion: Int?
    var changed: [String]
    /// Consent guards installed (or, in a dry run, to be installed), as `table (columns)`.
    var guardsInstalled: [String] = []
    /// Consent guards removed (or to be removed).
    var guardsRemoved: [String] = []

    init(_ change: PolicyChange) {
        policy = change.name.rawValue
        version = change.version
        switch change {
        case .created:
            self.change = .created
            changed = []
        case .unchanged:
            self.change = .unchanged
            changed = []
        case .updated(_, let from, _, let diff):
            self.change = .updated
            previousVersion = from
            changed = diff.changes.map(\.description)
        }
    }

    func line(dryRun: Bool) -> String {
        let guardLines =
            guardsInstalled.map { "\n    consent guard \(dryRun ? "would be installed" : "installed") on \($0)" }
            + guardsRemoved.map { "\n    consent guard \(dryRun ? "would be removed" : "removed") from \($0)" }
        switch change {
        case .created:
            return "\(dryRun ? "would create" : "created") \(policy) version \(version)" + guardLines.joined()
        case .updated:
            let details = changed.map { "\n    \($0)" }.joined()
            return "\(dryRun ? "would update" : "updated") \(policy) to version \(version)\(details)"
                + guardLines.joined()
        case .unchanged:
            return "unchanged \(policy) (version \(version))" + guardLines.joined()
        }
    }
}

/// `gallra policy apply --format json`.
struct ApplyReport: Encodable {
    var dryRun: Bool
    var changes: [ChangeReport]
}
