/// Deletes against the foreign keys that reference the deleted tables, and the order of the steps.
extension PolicyValidator {
    /// Foreign keys referencing `table`, leaving out partitions' copies of their parent's constraints.
    func references(to table: QualifiedName) -> [(table: CatalogTable, foreignKey: ForeignKey)] {
        catalog.foreignKeys(referencing: table).filter { !isCopy($0.table) }
    }

    /// For every deleted table: a kept child with a blocking foreign key is an error, a cascade to a table
    /// the policy does not name is a warning, SET NULL and SET DEFAULT are noted. A step that deletes or
    /// anonymizes blocks on nothing and cascades to nothing: a row still referenced when it runs is anonymized
    /// (a kept row always wins), so it is checked as the anonymize it may be, and its rows may keep the rows they
    /// reference, as an anonymize's do.
    mutating func checkDeletes(_ steps: inout [PendingStep]) {
        for index in steps.indices where steps[index].isDeleteOrAnonymize {
            let step = steps[index]
            guard step.relation != .referenced else { continue }
            let holders = Set(references(to: step.table.name).map { $0.table.name.description }).sorted()
            steps[index].notes.append(
                holders.isEmpty
                    ? "deleted; no foreign key references \(step.table.name), so no row is anonymized"
                    : "rows still referenced when the step runs (by \(holders.joined(separator: ", "))) are anonymized instead of deleted"
            )
        }
        var deleted: Set<QualifiedName> = []
        var nulled: [QualifiedName: Set<String>] = [:]
        var anonymizing: [QualifiedName: Int] = [:]
        for step in steps {
            if step.isDelete {
                deleted.insert(step.table.name)
            } else {
                nulled[step.table.name, default: []].formUnion(step.nulledColumns)
                anonymizing[step.table.name] = anonymizing[step.table.name] ?? step.dataPoint
            }
        }
        let named = Set(steps.map(\.table.name))
        for index in steps.indices where steps[index].isDelete {
            var visited: Set<QualifiedName> = [steps[index].table.name]
            var notes: [String] = []
            check(steps[index].table, cascadedFrom: nil)
            steps[index].notes += notes

            func check(_ table: CatalogTable, cascadedFrom cause: (table: QualifiedName, foreignKey: String)?) {
                let step = steps[index]
                let path = "data[\(step.dataPoint)].table"
                for (child, key) in references(to: table.name) {
                    let columns = key.columns.map { ColumnName($0) }
                    let reference = "\(child.name) through \(key.name) (ON DELETE \(key.onDelete.rawValue))"
                    if child.name == table.name {
                        if key.onDelete.blocksDelete {
                            warning(
                                "deleting \(table.name) fails for rows that other rows of \(table.name) still reference through \(key.name) (ON DELETE \(key.onDelete.rawValue)); those batches will be retried and skipped",
                                at: path)
                        }
                        continue
                    }
                    if deleted.contains(child.name) { continue }
                    if !(nulled[child.name] ?? []).isDisjoint(with: key.columns) { continue }
                    let deleting =
                        cause.map {
                            "deleting \(step.table.name) cascades to \($0.table) (\($0.foreignKey)), whose rows"
                        }
                        ?? "deleting \(step.table.name) (data[\(step.dataPoint)])"
                    switch key.onDelete {
                    case .noAction, .restrict:
                        if step.relation == .referenced {
                            if let last = step.path.last, last.direction == .parent, last.foreignKey == key.name,
                                last.from == child.name
                            {
                                warning(
                                    "data[\(step.dataPoint)] deletes rows of \(table.name) that \(child.name) points to through \(key.name), but the policy keeps those \(child.name) rows: every such row is shared and retained, so nothing is deleted. Delete \(child.name) too, or set \(columns.map(\.description).joined(separator: ", ")) to null",
                                    at: path)
                            } else {
                                notes.append(
                                    "rows still referenced by \(child.name) through \(key.name) are retained")
                            }
                            continue
                        }
                        error(
                            "\(deleting) is blocked by \(reference): the policy keeps those rows. \(proposal(child: child, key: key, deletedStep: step, anonymizedAt: anonymizing[child.name]))",
                            at: path)
                    case .cascade:
                        guard visited.insert(child.name).inserted else { continue }
                        notes.append("also deletes rows of \(child.name) through \(key.name) (ON DELETE CASCADE)")
                        if !named.contains(child.name) {
                            warning(
                                "deleting \(table.name) also deletes rows of \(child.name) through \(key.name) (ON DELETE CASCADE); list it in the policy to make that explicit: \(dataPointText(for: child.name, below: step, extra: cause == nil ? [] : [table.name], action: "delete: true"))",
                                at: path)
                        }
                        check(child, cascadedFrom: (table.name, key.name))
                    case .setNull, .setDefault:
                        if key.onDelete == .setNull, step.relation != .referenced,
                            let refusal = nullRefusal(child, columns: key.columns)
                        {
                            error(
                                "\(deleting) sets \(Self.columnList(child.name, columns)) to NULL through \(key.name) (ON DELETE SET NULL), but \(refusal): the delete fails while such rows remain. \(proposal(child: child, key: key, deletedStep: step, anonymizedAt: anonymizing[child.name]))",
                                at: path)
                            continue
                        }
                        let effect = key.onDelete == .setNull ? "NULL" : "its default"
                        notes.append(
                            "sets \(Self.columnList(child.name, columns)) to \(effect) in rows that referenced deleted rows (\(key.name))"
                        )
                    }
                }
            }
        }
    }

    /// Why `columns` of `table` cannot all be set to NULL (NOT NULL, or a CHECK constraint that null may fail), or nil.
    func nullRefusal(_ table: CatalogTable, columns: [String]) -> String? {
        if let column = columns.first(where: { table.column($0)?.isNullable == false }) {
            return "\(ColumnName(column)) is NOT NULL"
        }
        if let check = table.checks.first(where: { check in
            !Set(check.columns).isDisjoint(with: columns) && check.acceptsNull != true
        }) {
            return "\(check.name) (\(check.definition)) may fail with them null"
        }
        return nil
    }

    /// How to fix a delete blocked by a kept child: delete the child rows too, or detach them.
    func proposal(child: CatalogTable, key: ForeignKey, deletedStep: PendingStep, anonymizedAt: Int?) -> String {
        let deletion = dataPointText(for: child.name, below: deletedStep, extra: [], action: "delete: true")
        let detachable = key.columns.allSatisfy { name in
            child.column(name)?.isNullable == true && child.primaryKey?.contains(name) != true
        }
        guard detachable else { return "Delete them too: add the data point \(deletion)" }
        let nulls = key.columns.map { "\(ColumnName($0)): null" }.joined(separator: ", ")
        if let anonymizedAt {
            return
                "Delete them too (\(deletion)), or detach them: add \(nulls) to the anonymize of \(child.name) (data[\(anonymizedAt)])"
        }
        let detach = dataPointText(for: child.name, below: deletedStep, extra: [], action: "anonymize: { \(nulls) }")
        return "Delete them too: add the data point \(deletion), or detach them: \(detach)"
    }

    /// `- { table: CHILD, through: [...], ACTION }` for a table one hop beyond a step's table.
    func dataPointText(
        for child: QualifiedName, below step: PendingStep, extra: [QualifiedName], action: String
    ) -> String {
        var through = step.path.map(\.to) + extra
        if step.path.isEmpty, step.table.name != catalog.table(policy.subject.table)?.name {
            through.append(step.table.name)
        }
        let written: String
        switch through.count {
        case 0: written = ""
        case 1: written = ", through: \(through[0])"
        default: written = ", through: [\(through.map(\.description).joined(separator: ", "))]"
        }
        return "- { table: \(child)\(written), \(action) }"
    }

    // MARK: - Order

    /// The steps in the order the engine applies them, or nil after reporting that no order works.
    ///
    /// Hard constraints: a step on a table that references a deleted table runs before that delete (its rows
    /// are deleted or detached first, or the delete fails or cascades over them). Preferences: a step runs
    /// before the steps that break its path (delete a table on it, or null a joining column), rows owned by
    /// the subject before the subject row, the subject row before rows it points to; deeper paths first; then
    /// the order written. A step that must run after a step breaking its path gets ``ResolvedStep/identifyRowsBefore``.
    mutating func order(_ steps: [PendingStep]) -> [ResolvedStep]? {
        let count = steps.count
        var before = [Set<Int>](repeating: [], count: count)  // before[b] = steps that must precede b
        for (b, deleting) in steps.enumerated() where deleting.isDelete || deleting.isDeleteOrAnonymize {
            // A delete-or-anonymize cascades to nothing (a referenced row is kept), but runs after the steps on
            // the tables that reference it, so that the rows they delete no longer keep its rows.
            let reached = deleting.isDelete ? cascadeClosure(deleting.table.name) : [deleting.table.name]
            for (a, step) in steps.enumerated() where a != b && step.table.name != deleting.table.name {
                let references = step.table.foreignKeys.contains { reached.contains($0.referencedTable) }
                if references || reached.contains(step.table.name) { before[b].insert(a) }
            }
        }
        if let cycle = findCycle(before) {
            let names = cycle.map { "data[\(steps[$0].dataPoint)] (\(steps[$0].table.name))" }
            error(
                "no order of the data points works: \(names.joined(separator: ", ")) each reference a table another one deletes; make one of the foreign keys ON DELETE CASCADE or SET NULL, or detach one side with null",
                at: "data[\(steps[cycle[0]].dataPoint)].table")
            return nil
        }
        func phase(_ step: PendingStep) -> Int {
            switch step.relation {
            case .owned: 0
            case .subject: 1
            case .referenced: 2
            }
        }
        for (a, step) in steps.enumerated() {
            for (b, other) in steps.enumerated() where a != b && breaks(other, step.path) {
                guard phase(step) <= phase(other), !reaches(before, from: a, to: b) else { continue }
                before[b].insert(a)
            }
        }
        // Kahn's algorithm, choosing among ready steps by phase, then deeper paths, then the order written.
        var remaining = Set(0..<count)
        var sequence: [Int] = []
        while !remaining.isEmpty {
            let ready = remaining.filter { before[$0].isDisjoint(with: remaining) }
            guard
                let next = ready.min(by: { left, right in
                    (phase(steps[left]), -steps[left].path.count, steps[left].dataPoint)
                        < (phase(steps[right]), -steps[right].path.count, steps[right].dataPoint)
                })
            else { return nil }
            sequence.append(next)
            remaining.remove(next)
        }
        var resolved: [ResolvedStep] = []
        for (position, index) in sequence.enumerated() {
            let step = steps[index]
            let breaker = sequence[..<position].firstIndex { breaks(steps[$0], step.path) }
            var notes = step.notes
            if step.relation == .referenced {
                notes.insert(
                    step.isDeleteOrAnonymize
                        ? "rows the subject points to; shared rows are anonymized, the others deleted"
                        : "rows the subject points to; shared rows are retained", at: 0)
            }
            if let breaker, step.relation != .referenced {
                let other = steps[sequence[breaker]]
                error(
                    "data[\(step.dataPoint)] (\(step.table.name)) must run after data[\(other.dataPoint)] (\(other.table.name)), which breaks the path to its rows; gallra identifies rows ahead only for rows the subject points to. Link \(step.table.name) to the subject without \(other.table.name) (through:, via:), or let its rows go with a foreign key ON DELETE CASCADE",
                    at: "data[\(step.dataPoint)].table")
                continue
            }
            if let breaker {
                notes.append(
                    "its rows are identified before step \(breaker + 1), which breaks the path to them")
            }
            let referencedBy =
                step.relation == .referenced || step.isDeleteOrAnonymize
                ? references(to: step.table.name).map { reference in
                    ForeignKeyReference(
                        table: reference.table.name, columns: reference.foreignKey.columns.map { ColumnName($0) },
                        foreignKey: reference.foreignKey.name,
                        referencedColumns: reference.foreignKey.referencedColumns.map { ColumnName($0) })
                } : []
            resolved.append(
                ResolvedStep(
                    dataPoint: step.dataPoint, location: source.location(of: "data[\(step.dataPoint)]"),
                    table: step.table.name, isPartitioned: step.table.kind == .partitioned, path: step.path,
                    relation: step.relation, action: step.action, identifyRowsBefore: breaker,
                    referencedBy: referencedBy, notes: notes, estimatedRows: step.table.estimatedRows,
                    primaryKey: step.table.primaryKey?.map { ColumnName($0) }))
        }
        return diagnostics.contains { $0.severity == .error } ? nil : resolved
    }

    /// The table and every table its delete cascades to.
    func cascadeClosure(_ table: QualifiedName) -> Set<QualifiedName> {
        var reached: Set<QualifiedName> = [table]
        var queue = [table]
        while let next = queue.popLast() {
            for (child, key) in references(to: next) where key.onDelete == .cascade {
                if reached.insert(child.name).inserted { queue.append(child.name) }
            }
        }
        return reached
    }

    /// Whether running `step` makes rows reached along `path` unreachable.
    func breaks(_ step: PendingStep, _ path: [JoinHop]) -> Bool {
        guard let first = path.first else { return false }
        let onPath = [first.from] + path.dropLast().map(\.to)
        if step.isDelete { return onPath.contains(step.table.name) }
        if step.isDeleteOrAnonymize, onPath.contains(step.table.name) { return true }
        let changed = step.changedColumns
        guard !changed.isEmpty else { return false }
        return path.contains { hop in
            (hop.from == step.table.name && !changed.isDisjoint(with: hop.fromColumns.map(\.name)))
                || (hop.to == step.table.name && !changed.isDisjoint(with: hop.toColumns.map(\.name)))
        }
    }

    /// Whether `to` must (transitively) run before `from`, i.e. `before` leads from `from` back to `to`.
    func reaches(_ before: [Set<Int>], from: Int, to: Int) -> Bool {
        var seen: Set<Int> = []
        var stack = [from]
        while let next = stack.popLast() {
            if next == to { return true }
            for earlier in before[next] where seen.insert(earlier).inserted { stack.append(earlier) }
        }
        return false
    }

    func findCycle(_ before: [Set<Int>]) -> [Int]? {
        for start in before.indices {
            for earlier in before[start] where reaches(before, from: earlier, to: start) {
                return [start, earlier].sorted()
            }
        }
        return nil
    }
}
