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
/// subject (a dictionary per subject held ten times the memory). A step finds its columns once (``column(table:action:)``)
/// and each result row its subject's row once (``row(of:)``), so that adding a count is an array write.
struct SubjectCounts {
    private let position: [String: Int]
    private var kinds: [AuditCountKey] = []
    private var counts: [[Int]] = []

    init(subjects: [String]) {
        var position: [String: Int] = [:]
        position.reserveCapacity(subjects.count)
        for (index, subject) in subjects.enumerated() { position[subject] = index }
        self.position = position
    }

    /// The row of a subject of the batch; nil for others (they are not counted).
    func row(of subject: String) -> Int? {
        position[subject]
    }

    /// The column of a table and action, added when new. The kinds are a few per policy: a search beats hashing.
    mutating func column(table: String, action: AuditCount.Action) -> Int {
        if let known = kinds.firstIndex(where: { $0.action == action && $0.table == table }) { return known }
        kinds.append(AuditCountKey(table: table, action: action))
        counts.append(Array(repeating: 0, count: position.count))
        return kinds.count - 1
    }

    /// Adds `rows` to a subject's row in a column.
    mutating func add(_ rows: Int, row: Int, column: Int) {
        counts[column][row] += rows
    }

    /// Adds `rows` to a subject of the batch (others are not counted).
    mutating func add(_ rows: Int, subject: String, table: String, action: AuditCount.Action) {
        guard let row = position[subject] else { return }
        add(rows, row: row, column: column(table: table, action: action))
    }

    /// The audit records of `subjects` (of the batch), each with its digest from `digest`, and their rows summed per
    /// table and action (the kinds with rows only). The columns are put in the records' order once, not per record.
    func records(
        of subjects: [String], digest: (String) -> String
    ) -> (records: [AuditRecord], audited: [AuditCountKey: Int]) {
        let order = kinds.indices.sorted { left, right in
            AuditCount.recordOrder(
                AuditCount(table: kinds[left].table, action: kinds[left].action, rows: 0),
                AuditCount(table: kinds[right].table, action: kinds[right].action, rows: 0))
        }
        var totals = Array(repeating: 0, count: kinds.count)
        var records: [AuditRecord] = []
        records.reserveCapacity(subjects.count)
        for subject in subjects {
            var subjectCounts: [AuditCount] = []
            if let row = position[subject] {
                for column in order where counts[column][row] > 0 {
                    let rows = counts[column][row]
                    subjectCounts.append(
                        AuditCount(table: kinds[column].table, action: kinds[column].action, rows: rows))
                    totals[column] += rows
                }
            }
            records.append(AuditRecord(subjectDigest: digest(subject), orderedCounts: subjectCounts))
        }
        var audited: [AuditCountKey: Int] = [:]
        for (column, total) in totals.enumerated() where total > 0 { audited[kinds[column]] = total }
        return (records, audited)
    }
}
