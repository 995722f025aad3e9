import GallraPolicy
import GallraPostgres

extension Engine {
    /// Errors the database raises for the data of a subject (a constraint, a value, a trigger's refusal, a routine
    /// the application calls): waiting does not make them go away, so they are never retried. A batch isolates the
    /// subject that raises one and leaves it.
    static func isRefusal(_ error: any Error) -> Bool {
        guard let error = error as? PostgresError, error.code == .server, let state = error.sqlState else {
            return false
        }
        return refusalClasses.contains(state.errorClass)
    }

    /// 22 data exception, 23 integrity constraint violation, P0 PL/pgSQL raise, 2F SQL routine exception, 38
    /// external routine exception, 39 external routine invocation exception.
    static let refusalClasses: Set<SQLState.Class> = [
        .dataException, .integrityConstraintViolation, .plpgsqlError, SQLState.Class(rawValue: "2F"),
        SQLState.Class(rawValue: "38"), SQLState.Class(rawValue: "39"),
    ]
}

/// What a batch's steps did so far, for the subjects whose part of the batch succeeded.
struct BatchActs {
    var perSubject: SubjectCounts
    /// Per step: rows acted on, of them the rows a delete-or-anonymize anonymized, and the rows retained.
    var steps: [(rows: Int, anonymized: Int, retained: Set<String>)]
    /// Subjects whose row a delete-or-anonymize of the subject row deleted.
    var deletedSubjects: Set<String> = []
    /// Per step, the rows the subjects point to that an earlier part of the batch settled, and how: a later part
    /// whose subject points to one too counts it for that subject without acting on it again.
    var settled: [Int: [String: AuditCount.Action]] = [:]

    init(subjects: [String], steps: Int) {
        perSubject = SubjectCounts(subjects: subjects)
        self.steps = Array(repeating: (0, 0, []), count: steps)
    }
}

extension LivePolicyRun {
    /// Runs the steps for `part` under a savepoint. When the database refuses (``Engine/isRefusal(_:)``), rolls the
    /// part back and splits it in two, until the refusing subject stands alone: it is added to `left`, and every
    /// other subject goes on in the batch's transaction. One refusing subject in a batch of n costs about 2 log2 n
    /// extra runs of the steps over ever smaller parts. Any other error ends the batch's transaction as before.
    /// `bindings.keys` holds `part`'s keys, and `captured` the rows of `part`'s subjects only.
    func isolate(
        _ part: [String], plans: [StepPlan], captured: [Int: [CapturedRow]], bindings: Engine.Bindings,
        acts: inout BatchActs, left: inout [LeftSubject], on connection: isolated PostgresConnection
    ) async throws {
        connection.enqueue("SAVEPOINT gallra_part")
        var attempt = acts
        do {
            try await steps(part, plans: plans, captured: captured, bindings: bindings, acts: &attempt, on: connection)
        } catch let error as PostgresError where Engine.isRefusal(error) {
            connection.enqueue("ROLLBACK TO SAVEPOINT gallra_part")
            connection.enqueue("RELEASE SAVEPOINT gallra_part")
            guard part.count > 1 else {
                let subjectTable = policy.resolved.subject.table.description
                left.append(
                    LeftSubject(
                        key: part[0], digest: digester.digest(table: subjectTable, key: part[0]), reason: .refused,
                        table: error.tableName.map { table in error.schemaName.map { "\($0).\(table)" } ?? table },
                        sqlState: error.sqlState?.rawValue, message: Engine.describe(error)))
                return
            }
            let half = part.count / 2
            for half in [Array(part[..<half]), Array(part[half...])] {
                var bindings = bindings
                bindings.keys = Engine.keyArray(half)
                let members = Set(half)
                try await isolate(
                    half, plans: plans, captured: captured.mapValues { $0.filter { members.contains($0.subject) } },
                    bindings: bindings, acts: &acts, left: &left, on: connection)
            }
            return
        }
        connection.enqueue("RELEASE SAVEPOINT gallra_part")
        acts = attempt
    }

    /// The batch's steps, in apply order, for the subjects `part` (all of the batch, or part of it when a subject
    /// is being isolated): counts go to `acts`. Every statement's input is known before the first runs (the rows
    /// the subjects point to were captured, and earlier parts settled theirs), so they go in one pipeline: one
    /// round trip for all the steps. `bindings.keys` holds `part`'s keys, and `captured` the rows of `part`'s subjects
    /// only.
    func steps(
        _ part: [String], plans: [StepPlan], captured: [Int: [CapturedRow]], bindings: Engine.Bindings,
        acts: inout BatchActs, on connection: isolated PostgresConnection
    ) async throws {
        /// What a plan sends, and where its results are in the pipeline's.
        struct Sent {
            var act: Int?
            var rows: (captured: [CapturedRow], counting: [String: Int], shared: Set<String>)?
            var actOnRows: Int?
            var anonymizeRows: Int?
        }
        var statements: [PostgresStatement] = []
        var sent: [Sent] = []
        for plan in plans {
            var entry = Sent()
            if let act = plan.act {
                if let lock = plan.lock {
                    statements.append(PostgresStatement(lock.sql, Engine.values(lock, bindings), prepared: true))
                }
                entry.act = statements.count
                statements.append(PostgresStatement(act.sql, Engine.values(act, bindings), prepared: true))
            } else if let actOnRows = plan.actOnRows {
                // The rows of the step and its twins (referenced steps acting alike on one table) that this part's
                // subjects point to.
                let rows = captured[plan.index] ?? []
                let settled = acts.settled[plan.index] ?? [:]
                // The step each row counts under (the capture judges each row once, so its pairs agree).
                var counting: [String: Int] = [:]
                counting.reserveCapacity(rows.count)
                var shared: Set<String> = []
                for row in rows where settled.isEmpty || settled[row.row] == nil {
                    counting[row.row] = row.step
                    if row.shared { shared.insert(row.row) }
                }
                entry.rows = (rows, counting, shared)
                let candidates = counting.keys.filter { !shared.contains($0) }.sorted()
                if !candidates.isEmpty {
                    var rowBindings = bindings
                    rowBindings.rows = "[" + candidates.joined(separator: ",") + "]"
                    entry.actOnRows = statements.count
                    statements.append(
                        PostgresStatement(actOnRows.sql, Engine.values(actOnRows, rowBindings), prepared: true))
                }
                // A delete-or-anonymize anonymizes the shared rows instead of retaining them.
                if let anonymizeRows = plan.anonymizeRows, !shared.isEmpty {
                    var rowBindings = bindings
                    rowBindings.rows = "[" + shared.sorted().joined(separator: ",") + "]"
                    entry.anonymizeRows = statements.count
                    statements.append(
                        PostgresStatement(anonymizeRows.sql, Engine.values(anonymizeRows, rowBindings), prepared: true))
                }
            }
            sent.append(entry)
        }
        let results = try await connection.pipeline(statements)
        for (plan, entry) in zip(plans, sent) {
            let table = plan.step.table.description
            let action: AuditCount.Action = plan.step.action.mayDelete ? .deleted : .anonymized
            if let act = entry.act {
                // A row per subject the step acted for; none when it found no rows.
                guard !results[act].isEmpty else { continue }
                let column = acts.perSubject.column(table: table, action: action)
                let keptColumn =
                    plan.deletesOrAnonymizes ? acts.perSubject.column(table: table, action: .anonymized) : 0
                var rows = 0
                var anonymized = 0
                for row in results[act] {
                    let subject = try row.decode("subject", as: String.self)
                    let count = try row.decode("rows", as: Int.self)
                    let counted = acts.perSubject.row(of: subject)
                    if let counted { acts.perSubject.add(count, row: counted, column: column) }
                    rows += count
                    if plan.deletesOrAnonymizes {
                        let kept = try row.decode("anonymized", as: Int.self)
                        if let counted { acts.perSubject.add(kept, row: counted, column: keptColumn) }
                        anonymized += kept
                        if plan.step.relation == .subject, count > 0 { acts.deletedSubjects.insert(subject) }
                    }
                }
                acts.steps[plan.index].rows += rows + anonymized
                acts.steps[plan.index].anonymized += anonymized
            } else if let (rows, counting, sharedRows) = entry.rows {
                let settled = acts.settled[plan.index] ?? [:]
                var shared = sharedRows
                let acted = Set(
                    try entry.actOnRows.map { index in try results[index].map { try $0.decode("row", as: String.self) }
                    }
                        ?? [])
                let anonymized = Set(
                    try entry.anonymizeRows.map { index in
                        try results[index].map { try $0.decode("row", as: String.self) }
                    } ?? [])
                shared.subtract(anonymized)
                for row in acted { acts.steps[counting[row] ?? plan.index].rows += 1 }
                for row in anonymized {
                    acts.steps[counting[row] ?? plan.index].rows += 1
                    acts.steps[counting[row] ?? plan.index].anonymized += 1
                }
                for row in shared { acts.steps[counting[row] ?? plan.index].retained.insert(row) }
                var seen: Set<SubjectRow> = []
                seen.reserveCapacity(rows.count)
                for row in rows where seen.insert(SubjectRow(subject: row.subject, row: row.row)).inserted {
                    if acted.contains(row.row) {
                        acts.perSubject.add(1, subject: row.subject, table: table, action: action)
                    } else if anonymized.contains(row.row) {
                        acts.perSubject.add(1, subject: row.subject, table: table, action: .anonymized)
                    } else if shared.contains(row.row) {
                        acts.perSubject.add(1, subject: row.subject, table: table, action: .retained)
                    } else if let how = settled[row.row] {
                        acts.perSubject.add(1, subject: row.subject, table: table, action: how)
                    }
                }
                var settling = settled
                settling.reserveCapacity(settled.count + acted.count + anonymized.count + shared.count)
                for row in acted { settling[row] = action }
                for row in anonymized { settling[row] = .anonymized }
                for row in shared { settling[row] = .retained }
                acts.settled[plan.index] = settling
            }
        }
    }
}

/// A subject and a row it points to, counted once for the subject however many of a step's twins reach the row.
private struct SubjectRow: Hashable {
    var subject: String
    var row: String
}
