/// The resolved plan for people (`gallra policy validate`, `gallra policy show`): every table the policy
/// touches, how it is reached from the subject, and the action, in the order the engine applies them.
/// Names are written as SQL would need them (`shop."order"`).
extension ResolvedPolicy: CustomStringConvertible {
    public var description: String { render() }

    /// The plan, one line per step, notes indented below their step.
    public func render() -> String {
        var lines: [String] = []
        let policy = self.policy
        lines.append(
            "policy \(policy.name) (\(policy.state.rawValue)), subject \(subject.table.rendered(for: .sql)) by \(subject.key.rendered(for: .sql))"
        )
        if let why = policy.purposeLine { lines.append("  \(why)") }
        lines.append("  expires: \(rule.rendered)")
        for exemption in exemptions {
            lines.append("  except: \(exemption.rendered)")
        }
        let width = steps.map { $0.table.rendered(for: .sql).count }.max() ?? 0
        for (position, step) in steps.enumerated() {
            let number = "\(position + 1)."
            let verb: String
            var detail: String
            switch step.action {
            case .delete:
                verb = "delete"
                detail = ""
            case .anonymize(let columns):
                verb = "anonymize"
                detail = columns.map { "\($0.column.rendered(for: .sql)): \($0.strategy)" }.joined(separator: ", ")
            case .deleteOrAnonymize(let columns):
                verb = "delete"
                detail =
                    "or, where still referenced, anonymize "
                    + columns.map { "\($0.column.rendered(for: .sql)): \($0.strategy)" }.joined(separator: ", ")
            }
            let link = step.path.isEmpty ? "the subject row" : "via \(JoinHop.rendered(step.path))"
            detail = detail.isEmpty ? link : "\(detail)   \(link)"
            let table = step.table.rendered(for: .sql).padding(to: width)
            lines.append("  \(number) \(verb.padding(to: 9)) \(table)  \(detail)")
            let indent = String(repeating: " ", count: number.count + 3)
            for note in step.notes {
                lines.append("\(indent)(\(note))")
            }
        }
        if let collection = collectionLine { lines.append("  \(collection)") }
        return lines.joined(separator: "\n")
    }

    /// `collect: with_consent` for people: the tables guarded, and when.
    var collectionLine: String? {
        guard policy.collection == .withConsent, !guards.isEmpty else { return nil }
        let tables = guards.map { guarded in
            "\(guarded.table.rendered(for: .sql)) (\(guarded.columns.rendered(for: .sql)))"
        }
        let when = policy.state == .active ? "" : " once the policy is active"
        return
            "collect: with consent only: a trigger\(when) refuses rows of subjects without consent in force in \(tables.joined(separator: ", "))"
    }
}

extension Policy {
    /// The legal basis and the purpose's first line, shortened, for the plan's second line; nil when neither is set.
    var purposeLine: String? {
        var parts: [String] = []
        if let legalBasis { parts.append("legal basis: \(legalBasis) (GDPR \(legalBasis.article))") }
        if let purpose {
            let first = purpose.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? ""
            let limit = 60
            let shown =
                first.count > limit || first != purpose ? String(first.prefix(limit)).trimmingWhitespace + "…" : first
            parts.append("purpose: \(shown)")
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }
}

extension ResolvedRule {
    /// The rule for people, as the plan prints it after `expires:`.
    public var rendered: String {
        let place =
            path.isEmpty ? column.rendered(for: .sql) : "\(table.rendered(for: .sql)).\(column.rendered(for: .sql))"
        let index = index.map { "index \($0)" } ?? "no index"
        let link = path.isEmpty ? "" : ", via \(JoinHop.rendered(path))"
        switch kind {
        case .inactiveFor:
            let what = path.isEmpty ? place : "latest \(place)"
            return "\(what) older than \(period)\(link) (\(index))"
        case .olderThan:
            return "\(place) older than \(period) (\(index))"
        case .after:
            return "\(place) more than \(period) ago; never while null (\(index))"
        case .consentRevoked where path.isEmpty:
            // consent: gallra (a consent table is always reached through a link).
            return "latest consent event in \(table.rendered(for: .sql)) revoked more than \(period) ago (\(index))"
        case .consentRevoked:
            return "consent revoked (\(place)) more than \(period) ago\(link) (\(index))"
        case .onRequest:
            return "a pending erasure request in \(table.rendered(for: .sql)) is due (\(index))"
        }
    }
}

extension ResolvedExemption {
    var rendered: String {
        switch exemption {
        case .column(let column, let predicate):
            return "\(column.rendered(for: .sql)) \(predicate.rendered)"
        case .relatedExists(_, _, _, let conditions):
            let clause =
                conditions.isEmpty
                ? ""
                : " where "
                    + conditions.map { "\($0.column.rendered(for: .sql)) \($0.predicate.rendered)" }.joined(
                        separator: " and ")
            return "a row of \(table.rendered(for: .sql)) exists\(clause), via \(JoinHop.rendered(path))"
        }
    }
}

extension Exemption.Predicate {
    var rendered: String {
        switch self {
        case .is(let truth): "is \(truth.rawValue)"
        case .equals(let value): "= \(value)"
        case .in(let values): "in (\(values.map(\.description).joined(separator: ", ")))"
        case .notIn(let values): "not in (\(values.map(\.description).joined(separator: ", ")))"
        }
    }
}

extension JoinHop {
    /// `shop.order_line.order_id -> shop."order".id -> shop."order".customer_id -> shop.customer.id`, from the
    /// data point back to the subject, then the constraints followed.
    static func rendered(_ path: [JoinHop]) -> String {
        func place(_ table: QualifiedName, _ columns: [ColumnName]) -> String {
            let list = columns.count == 1 ? columns[0].rendered(for: .sql) : "(\(columns.rendered(for: .sql)))"
            return "\(table.rendered(for: .sql)).\(list)"
        }
        var parts: [String] = []
        for hop in path.reversed() {
            parts.append(place(hop.to, hop.toColumns))
            parts.append(place(hop.from, hop.fromColumns))
        }
        let keys = path.reversed().map { $0.foreignKey ?? "no foreign key" }
        return parts.joined(separator: " -> ") + " [\(keys.joined(separator: ", "))]"
    }
}

extension String {
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
