/// `collect: with_consent`: which tables get a consent guard, and what the guard needs.
extension PolicyValidator {
    /// The guards of a policy that collects only with consent: one per data-point table that links to the subject
    /// directly (a single hop whose rows belong to the subject) and per link (a table may link twice, by two
    /// columns). Empty for `collect: always`.
    ///
    /// A guard reads gallra's consent registry, so the policy must record consent there (`legal_basis: consent`)
    /// under a subject table named with its schema, as the consent functions require; and the role must be allowed
    /// to create triggers on each guarded table.
    mutating func resolveCollection(_ steps: [PendingStep], subjectTable: CatalogTable) -> [ResolvedCollectionGuard] {
        guard policy.collection == .withConsent else { return [] }
        var ok = true
        if policy.legalBasis != .consent {
            let stated = policy.legalBasis.map { "legal_basis: \($0.rawValue)" } ?? "no legal_basis"
            error(
                "collect: with_consent lets the shop write a subject's data only while consent is in force, which gallra records only under a policy with legal_basis: consent, and this policy states \(stated); add legal_basis: consent, or remove collect",
                at: "collect")
            ok = false
        }
        if policy.subject.table.schema == nil {
            error(
                "collect: with_consent checks consent recorded for the subject table by its schema-qualified name, and subject.table \(policy.subject.table) has no schema; write it as \(subjectTable.name)",
                at: "subject.table")
            ok = false
        }
        var guards: [ResolvedCollectionGuard] = []
        var guarded: Set<[String]> = []
        for step in steps {
            guard step.path.count == 1, let hop = step.path.first, hop.direction == .child else { continue }
            guard guarded.insert([step.table.name.description] + hop.toColumns.map(\.name)).inserted else { continue }
            let path = "data[\(step.dataPoint)].table"
            if step.table.kind != .table && step.table.kind != .partitioned {
                error(
                    "collect: with_consent guards \(step.table.name) with a trigger, and it is a \(Self.kindName(step.table.kind)), which takes no row trigger before insert; guard the table it reads from, or remove collect",
                    at: path)
                ok = false
                continue
            }
            need([.trigger], on: step.table, at: path, why: "to install its consent guard (collect: with_consent)")
            let keyColumn = subjectTable.column(policy.subject.key.name)
            let linkColumn = hop.toColumns.count == 1 ? step.table.column(hop.toColumns[0].name) : nil
            let keyIsLinked =
                hop.fromColumns.map(\.name) == [policy.subject.key.name] && keyColumn != nil
                && linkColumn?.type == keyColumn?.type
            guards.append(
                ResolvedCollectionGuard(
                    dataPoint: step.dataPoint, table: step.table.name, isPartitioned: step.table.kind == .partitioned,
                    columns: hop.toColumns, subjectColumns: hop.fromColumns, keyIsLinked: keyIsLinked))
        }
        if guards.isEmpty && ok {
            error(
                "collect: with_consent guards the data-point tables that link to the subject directly, and no entry of data does (the subject row itself and tables reached through others are not guarded); add the table that holds the collected data, or remove collect",
                at: "collect")
        }
        return guards
    }

    static func kindName(_ kind: CatalogTable.Kind) -> String {
        switch kind {
        case .table: "table"
        case .partitioned: "partitioned table"
        case .view: "view"
        case .materializedView: "materialized view"
        case .foreignTable: "foreign table"
        }
    }
}
