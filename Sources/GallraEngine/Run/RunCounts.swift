/// Rows per table and action of a policy's run, from its steps' counts.
extension PolicyRunReport {
    /// Rows per table and action from the steps' counts.
    static func tables(_ steps: [StepCounts]) -> [TableCounts] {
        var tables: [String: TableCounts] = [:]
        var order: [String] = []
        for step in steps {
            if tables[step.table] == nil {
                order.append(step.table)
                tables[step.table] = TableCounts(table: step.table, deleted: 0, anonymized: 0, retained: 0)
            }
            tables[step.table]?.deleted += step.deleted
            tables[step.table]?.anonymized += step.anonymizedRows
            tables[step.table]?.retained += step.retained
        }
        return order.compactMap { tables[$0] }
    }
}

/// A table and action of a subject's audit counts.
struct AuditCountKey: Hashable {
    var table: String
    var action: AuditCount.Action
}

/// A batch's rows per subject and per table and action: one column of counts per table and action, a row per
/// subject (a dictionary per subject held ten times the memory).
struct SubjectCounts {
    private let position: [String: Int]
    private var kinds: [AuditCountKey] = []
    private var columns: [AuditCountKey: Int] = [:]
    private var counts: [[Int]] = []

    init(subjects: [String]) {
        var position: [String: Int] = [:]
        position.reserveCapacity(subjects.count)
        for (index, subject) in subjects.enumerated() { position[subject] = index }
        self.position = position
    }

    /// Adds `rows` to a subject of the batch (others are not counted).
    mutating func add(_ rows: Int, subject: String, table: String, action: AuditCount.Action) {
        guard let row = position[subject] else { return }
        let key = AuditCountKey(table: table, action: action)
        let column: Int
        if let known = columns[key] {
            column = known
        } else {
            column = kinds.count
            kinds.append(key)
            columns[key] = column
            counts.append(Array(repeating: 0, count: position.count))
        }
        counts[column][row] += rows
    }

    /// A subject's counts, without zeros.
    func counts(of subject: String) -> [AuditCount] {
        guard let row = position[subject] else { return [] }
        return kinds.indices.compactMap { column in
            counts[column][row] > 0
                ? AuditCount(table: kinds[column].table, action: kinds[column].action, rows: counts[column][row]) : nil
        }
    }
}
