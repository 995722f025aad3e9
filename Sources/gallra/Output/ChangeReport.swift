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
        switch change {
        case .created:
            return "\(dryRun ? "would create" : "created") \(policy) version \(version)"
        case .updated:
            let details = changed.map { "\n    \($0)" }.joined()
            return "\(dryRun ? "would update" : "updated") \(policy) to version \(version)\(details)"
        case .unchanged:
            return "unchanged \(policy) (version \(version))"
        }
    }
}

/// `gallra policy apply --format json`.
struct ApplyReport: Encodable {
    var dryRun: Bool
    var changes: [ChangeReport]
}
