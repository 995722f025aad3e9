/// Warnings for policies that act on the same data: both delete a table, both anonymize a column, or one
/// deletes a table another anonymizes. Not errors: a subject expiring under both is processed by whichever
/// runs first, which is usually fine, but the reader of one policy should know about the other.
///
/// Each overlap is reported once, at the data point of the later policy (in the order given), naming the
/// earlier one. On-request policies (`expires: on_request`) are left out: they erase a subject who asked for it,
/// and acting on the same tables as the retention policies is what they are for.
public func overlapDiagnostics(_ policies: [ResolvedPolicy]) -> [PolicyDiagnostic] {
    struct Use {
        var policy: PolicyName
        var step: ResolvedStep
    }
    var deletes: [QualifiedName: Use] = [:]
    var anonymized: [QualifiedName: [ColumnName: Use]] = [:]
    var diagnostics: [PolicyDiagnostic] = []
    func place(_ use: Use) -> String { use.step.location.map { " at \($0)" } ?? "" }

    for resolved in policies where resolved.policy.rule != .onRequest {
        var found: [String] = []
        var ownDeletes: [QualifiedName: Use] = [:]
        var ownAnonymized: [QualifiedName: [ColumnName: Use]] = [:]
        for step in resolved.steps {
            let use = Use(policy: resolved.name, step: step)
            var messages: [String] = []
            switch step.action {
            case .delete, .deleteOrAnonymize:
                if let other = deletes[step.table], other.policy != resolved.name {
                    messages.append(
                        "policy \(resolved.name) deletes \(step.table), as policy \(other.policy) does (data[\(other.step.dataPoint)]\(place(other)))"
                    )
                } else if let columns = anonymized[step.table],
                    let other = columns.values.first(where: {
                        $0.policy != resolved.name
                    })
                {
                    messages.append(
                        "policy \(resolved.name) deletes \(step.table), which policy \(other.policy) anonymizes (data[\(other.step.dataPoint)]\(place(other)))"
                    )
                }
                ownDeletes[step.table] = ownDeletes[step.table] ?? use
            case .anonymize(let columns):
                let shared = columns.compactMap { column in
                    anonymized[step.table]?[column.column].flatMap { $0.policy != resolved.name ? ($0, column) : nil }
                }
                if let (other, _) = shared.first {
                    let names = shared.map { $0.1.column.description }.joined(separator: ", ")
                    messages.append(
                        "policy \(resolved.name) anonymizes \(step.table) (\(names)), as policy \(other.policy) does (data[\(other.step.dataPoint)]\(place(other)))"
                    )
                } else if let other = deletes[step.table], other.policy != resolved.name {
                    messages.append(
                        "policy \(resolved.name) anonymizes \(step.table), which policy \(other.policy) deletes (data[\(other.step.dataPoint)]\(place(other)))"
                    )
                }
                for column in columns {
                    ownAnonymized[step.table, default: [:]][column.column] =
                        ownAnonymized[step.table]?[column.column] ?? use
                }
            }
            for message in messages where !found.contains(message) {
                found.append(message)
                diagnostics.append(
                    PolicyDiagnostic(
                        severity: .warning, location: step.location, path: "data[\(step.dataPoint)]",
                        message:
                            "\(message); a subject expiring under both is processed by whichever runs first. Check that both policies mean it"
                    ))
            }
        }
        deletes.merge(ownDeletes) { earlier, _ in earlier }
        for (table, columns) in ownAnonymized {
            anonymized[table, default: [:]].merge(columns) { earlier, _ in earlier }
        }
    }
    return diagnostics
}
