import GallraPolicy

extension JSONValue {
    /// What differs between `old` and `new`, member by member and item by item, in document order
    /// (object keys sorted). Paths use the policy file's notation: `expires.inactive_for`, `data[2].anonymize.email`.
    static func differences(from old: JSONValue, to new: JSONValue, path: String = "") -> [PolicyDiff.Change] {
        switch (old, new) {
        case (.object(let oldMembers), .object(let newMembers)):
            let keys = Set(oldMembers.keys).union(newMembers.keys).sorted {
                $0.utf8.lexicographicallyPrecedes($1.utf8)
            }
            return keys.flatMap { key -> [PolicyDiff.Change] in
                let childPath = path.isEmpty ? key : path + "." + key
                switch (oldMembers[key], newMembers[key]) {
                case (let before?, let after?): return differences(from: before, to: after, path: childPath)
                case (let before?, nil): return [.init(path: childPath, kind: .removed, old: before.canonicalText)]
                case (nil, let after?): return [.init(path: childPath, kind: .added, new: after.canonicalText)]
                case (nil, nil): return []
                }
            }
        case (.array(let oldItems), .array(let newItems)):
            return (0..<max(oldItems.count, newItems.count)).flatMap { index -> [PolicyDiff.Change] in
                let childPath = path + "[\(index)]"
                if index >= newItems.count {
                    return [.init(path: childPath, kind: .removed, old: oldItems[index].canonicalText)]
                }
                if index >= oldItems.count {
                    return [.init(path: childPath, kind: .added, new: newItems[index].canonicalText)]
                }
                return differences(from: oldItems[index], to: newItems[index], path: childPath)
            }
        default:
            guard old != new else { return [] }
            return [.init(path: path, kind: .changed, old: old.canonicalText, new: new.canonicalText)]
        }
    }
}
