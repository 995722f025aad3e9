import GallraPolicy
import GallraPostgres

extension LivePolicyRun {
    /// One batch, inside its transaction.
    func batch(
        planner: Planner, plans: [StepPlan], bindings: Engine.Bindings, picked: PickedKeys,
        on connection: isolated PostgresConnection, published: @Sendable ([String]) async -> Void
    ) async throws -> BatchOutcome {
        // No JIT: a batch's statements are short, and compiling them (the server's cost estimate of a pick
        // reaches its JIT threshold on a large table) costs more than it saves.
        try await connection.execute(
            "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true), set_config('jit', 'off', true)",
            [.text(Self.milliseconds(options.statementTimeout)), .text(Self.milliseconds(options.lockTimeout))])
        var bindings = bindings
        let pick = planner.pickBatch(afterKey: bindings.afterKey != nil, upToKey: bindings.upToKey != nil)
        let keys = try await connection.query(pick.sql, Engine.values(pick, bindings)).map {
            try $0.decode("key", as: String.self)
        }
        // The first attempt's keys fix the batch's range; the next batch may pick after it from now on.
        if picked.set(keys) { await published(keys) }
        guard !keys.isEmpty else { return BatchOutcome(picked: [], subjects: 0, steps: []) }
        bindings.keys = Engine.jsonArray(keys)
        let confirm = planner.confirmBatch()
        let subjects = try await connection.query(confirm.sql, Engine.values(confirm, bindings)).map {
            try $0.decode("key", as: String.self)
        }
        guard !subjects.isEmpty else {
            return BatchOutcome(picked: keys, subjects: 0, steps: plans.map { _ in (0, 0, []) })
        }
        bindings.keys = Engine.jsonArray(subjects)

        // Rows the subjects point to: identified and locked before any step breaks the path to them.
        var captured: [Int: [CapturedRow]] = [:]
        for plan in plans {
            guard let capture = plan.capture else { continue }
            captured[plan.index] = try await connection.query(capture.sql, Engine.values(capture, bindings)).map {
                CapturedRow(
                    subject: try $0.decode("subject", as: String.self), row: try $0.decode("row", as: String.self),
                    shared: try $0.decode("shared", as: Bool.self), step: try $0.decode("step", as: Int.self))
            }
        }

        var perSubject = SubjectCounts(subjects: subjects)
        var stepCounts: [(rows: Int, anonymized: Int, retained: Set<String>)] = plans.map { _ in (0, 0, []) }
        // Subjects whose row a delete-or-anonymize of the subject row deleted: gone, so not recorded as processed.
        var deletedSubjects: Set<String> = []
        for plan in plans {
            let table = plan.step.table.description
            let action: AuditCount.Action = plan.step.action.mayDelete ? .deleted : .anonymized
            if let act = plan.act {
                if let lock = plan.lock { try await connection.execute(lock.sql, Engine.values(lock, bindings)) }
                var rows = 0
                var anonymized = 0
                for row in try await connection.query(act.sql, Engine.values(act, bindings)) {
                    let subject = try row.decode("subject", as: String.self)
                    let count = try row.decode("rows", as: Int.self)
                    perSubject.add(count, subject: subject, table: table, action: action)
                    rows += count
                    if plan.deletesOrAnonymizes {
                        let kept = try row.decode("anonymized", as: Int.self)
                        perSubject.add(kept, subject: subject, table: table, action: .anonymized)
                        anonymized += kept
                        if plan.step.relation == .subject, count > 0 { deletedSubjects.insert(subject) }
                    }
                }
                stepCounts[plan.index].rows += rows + anonymized
                stepCounts[plan.index].anonymized += anonymized
            } else if let actOnRows = plan.actOnRows {
                // The rows of the step and its twins (referenced steps acting alike on one table).
                let rows = captured[plan.index] ?? []
                // The step each row counts under (the capture judges each row once, so its pairs agree).
                var counting: [String: Int] = [:]
                var shared: Set<String> = []
                for row in rows {
                    counting[row.row] = row.step
                    if row.shared { shared.insert(row.row) }
                }
                let candidates = Set(counting.keys).subtracting(shared).sorted()
                var acted: Set<String> = []
                if !candidates.isEmpty {
                    var rowBindings = bindings
                    rowBindings.rows = "[" + candidates.joined(separator: ",") + "]"
                    acted = Set(
                        try await connection.query(actOnRows.sql, Engine.values(actOnRows, rowBindings)).map {
                            try $0.decode("row", as: String.self)
                        })
                }
                // A delete-or-anonymize anonymizes the shared rows instead of retaining them.
                var anonymized: Set<String> = []
                if let anonymizeRows = plan.anonymizeRows, !shared.isEmpty {
                    var rowBindings = bindings
                    rowBindings.rows = "[" + shared.sorted().joined(separator: ",") + "]"
                    anonymized = Set(
                        try await connection.query(anonymizeRows.sql, Engine.values(anonymizeRows, rowBindings)).map {
                            try $0.decode("row", as: String.self)
                        })
                    shared.subtract(anonymized)
                }
                for row in acted { stepCounts[counting[row] ?? plan.index].rows += 1 }
                for row in anonymized {
                    stepCounts[counting[row] ?? plan.index].rows += 1
                    stepCounts[counting[row] ?? plan.index].anonymized += 1
                }
                for row in shared { stepCounts[counting[row] ?? plan.index].retained.insert(row) }
                var seen: Set<[String]> = []
                for row in rows where seen.insert([row.subject, row.row]).inserted {
                    if acted.contains(row.row) {
                        perSubject.add(1, subject: row.subject, table: table, action: action)
                    } else if anonymized.contains(row.row) {
                        perSubject.add(1, subject: row.subject, table: table, action: .anonymized)
                    } else if shared.contains(row.row) {
                        perSubject.add(1, subject: row.subject, table: table, action: .retained)
                    }
                }
            }
        }

        let subjectTable = policy.resolved.subject.table.description
        // The registry stops naming the subjects: their consent events, under every policy, go with their data.
        var consentEvents = 0
        for row in try await connection.query(
            """
            SELECT e.subject_key, e.events
            FROM gallra.erase_consent($1, ARRAY(SELECT jsonb_array_elements_text($2::jsonb))) AS e
            """, [.text(subjectTable), .jsonb(bindings.keys)])
        {
            let events = try row.decode("events", as: Int.self)
            perSubject.add(
                events, subject: try row.decode("subject_key", as: String.self), table: Self.consentEvents,
                action: .deleted)
            consentEvents += events
        }

        let records = subjects.map { subject in
            AuditRecord(
                subjectDigest: digester.digest(table: subjectTable, key: subject),
                counts: perSubject.counts(of: subject))
        }
        try await AuditTrail.append(
            records: records, run: runID, policy: name, policyVersion: policy.version, keyCheck: digester.keyCheck,
            on: connection)
        // Their ended holds name them by digest from now on, as the audit trail does.
        try await Holds.forgetKeys(
            subjectTable: subjectTable, keys: subjects, digests: records.map(\.subjectDigest),
            erased: subjects.map { planner.deletesSubjectRow || deletedSubjects.contains($0) }, policy: name,
            asOf: bindings.asOf, inTransactionOn: connection)
        if !planner.deletesSubjectRow {
            // Subjects whose row remains; a subject row deleted (by a delete-or-anonymize) is gone with its key.
            let remaining =
                deletedSubjects.isEmpty
                ? bindings.keys : Engine.jsonArray(subjects.filter { !deletedSubjects.contains($0) })
            try await connection.execute(
                """
                INSERT INTO gallra.processed (policy, subject_key, run)
                SELECT $1, k, $2::uuid FROM jsonb_array_elements_text($3::jsonb) AS k
                """,
                [.text(name), .text(runID), .jsonb(remaining)])
        }
        return BatchOutcome(
            picked: keys, subjects: subjects.count, steps: stepCounts, consentEvents: consentEvents)
    }

    /// The table the audit counts name for a subject's consent events removed from gallra's registry.
    static let consentEvents = "gallra.consent_event"

    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms"
    }
}

/// What one committed batch did.
struct BatchOutcome: Sendable {
    /// Keys picked (and locked), in key order; empty when no due subject is left.
    var picked: [String]
    /// Subjects processed (still due once locked).
    var subjects: Int
    /// Per step: rows acted on, of them the rows a delete-or-anonymize anonymized, and the rows retained (their
    /// identities, for rows the subject points to).
    var steps: [(rows: Int, anonymized: Int, retained: Set<String>)]
    /// Consent events of the subjects removed from gallra's registry.
    var consentEvents = 0
}

/// A row a batch's subject points to, as its capture found it.
struct CapturedRow {
    var subject: String
    var row: String
    var shared: Bool
    /// The step (place in the apply order) the row counts under.
    var step: Int
}
