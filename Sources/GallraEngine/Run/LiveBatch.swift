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
        // Statements whose results the batch does not read go with the next one that it does (`enqueue`): an
        // undisturbed batch waits for the server six times (five when its subjects point to no rows), from BEGIN
        // and its settings with the pick to the audit block with COMMIT.
        connection.enqueue(
            "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true), set_config('jit', 'off', true)",
            [.text(Self.milliseconds(options.statementTimeout)), .text(Self.milliseconds(options.lockTimeout))],
            prepared: true)
        var bindings = bindings
        let pick = planner.pickBatch(afterKey: bindings.afterKey != nil, upToKey: bindings.upToKey != nil)
        let keys = try await connection.query(pick.sql, Engine.values(pick, bindings), prepared: true).map {
            try $0.decode("key", as: String.self)
        }
        // The first attempt's keys fix the batch's range; the next batch may pick after it from now on.
        if picked.set(keys) { await published(keys) }
        guard !keys.isEmpty else { return BatchOutcome(picked: [], subjects: 0, steps: []) }
        bindings.keys = Engine.keyArray(keys)

        // Rows the subjects point to: identified and locked before any step breaks the path to them. While one of
        // them may be held by another transaction, the capture waits only briefly for a lock (`lockProbe`): when it
        // would wait longer, it is rolled back, the subjects that point to a held row are found without waiting and
        // left, and the capture runs again for the others, waiting as long as `lock_timeout` allows. (The brief
        // wait and the savepoint are set before the re-check, which locks nothing, to go with it.)
        let capturing = plans.contains { $0.captureLockFree != nil } && Self.lockProbe < options.lockTimeout
        let probing = plans.contains { $0.lockFree != nil } && Self.lockProbe < options.lockTimeout
        var lockWait = options.lockTimeout
        if capturing {
            setLockTimeout(Self.lockProbe, on: connection)
            lockWait = Self.lockProbe
            connection.enqueue("SAVEPOINT gallra_capture")
        }
        let confirm = planner.confirmBatch()
        let confirmed = try await connection.query(confirm.sql, Engine.values(confirm, bindings), prepared: true).map {
            try $0.decode("key", as: String.self)
        }
        guard !confirmed.isEmpty else {
            return BatchOutcome(picked: keys, subjects: 0, steps: plans.map { _ in (0, 0, []) })
        }
        var subjects = confirmed
        let subjectTable = policy.resolved.subject.table.description
        // Usually every key picked is still due: its list is bound already.
        if confirmed != keys { bindings.keys = Engine.keyArray(subjects) }
        var left: [LeftSubject] = []
        var captured: [Int: [CapturedRow]] = [:]
        do {
            captured = try await capture(plans: plans, bindings: bindings, on: connection)
        } catch let error as PostgresError where capturing && error.isLockNotAvailable {
            connection.enqueue("ROLLBACK TO SAVEPOINT gallra_capture")
            let busy = try await busySubjects(
                subjects, probe: \.captureLockFree, plans: plans, bindings: bindings, on: connection)
            left += busy
            let held = Set(busy.compactMap(\.key))
            subjects.removeAll { held.contains($0) }
            bindings.keys = Engine.keyArray(subjects)
            guard !subjects.isEmpty else {
                return BatchOutcome(picked: keys, subjects: 0, steps: plans.map { _ in (0, 0, []) }, left: left)
            }
            setLockTimeout(options.lockTimeout, on: connection)
            lockWait = options.lockTimeout
            captured = try await capture(plans: plans, bindings: bindings, on: connection)
        }
        if capturing { connection.enqueue("RELEASE SAVEPOINT gallra_capture") }

        // The steps, for all subjects at once; a subject the database refuses is isolated and left. While an owned
        // row of a subject may be held by another transaction, the steps wait only briefly for a lock
        // (`lockProbe`): when they would wait longer, they are rolled back, the subjects with an owned row held are
        // found without waiting and left, and the steps run again for the others, waiting as long as
        // `lock_timeout` allows. An undisturbed batch pays a savepoint each for the capture and the steps, and two
        // settings, no scan.
        var acts = BatchActs(subjects: subjects, steps: plans.count)
        var refused: [LeftSubject] = []
        if probing && lockWait != Self.lockProbe { setLockTimeout(Self.lockProbe, on: connection) }
        if !probing && lockWait != options.lockTimeout { setLockTimeout(options.lockTimeout, on: connection) }
        connection.enqueue("SAVEPOINT gallra_steps")
        do {
            try await isolate(
                subjects, plans: plans, captured: captured, bindings: bindings, acts: &acts, left: &refused,
                on: connection)
        } catch let error as PostgresError where probing && error.isLockNotAvailable {
            connection.enqueue("ROLLBACK TO SAVEPOINT gallra_steps")
            let busy = try await busySubjects(
                subjects, probe: \.lockFree, plans: plans, bindings: bindings, on: connection)
            left += busy
            let held = Set(busy.compactMap(\.key))
            subjects.removeAll { held.contains($0) }
            acts = BatchActs(subjects: subjects, steps: plans.count)
            refused = []
            bindings.keys = Engine.keyArray(subjects)
            captured = captured.mapValues { $0.filter { !held.contains($0.subject) } }
            setLockTimeout(options.lockTimeout, on: connection)
            if !subjects.isEmpty {
                try await isolate(
                    subjects, plans: plans, captured: captured, bindings: bindings, acts: &acts, left: &refused,
                    on: connection)
            }
        }
        connection.enqueue("RELEASE SAVEPOINT gallra_steps")
        if probing { setLockTimeout(options.lockTimeout, on: connection) }
        left += refused
        if !refused.isEmpty {
            let leftKeys = Set(refused.compactMap(\.key))
            subjects.removeAll { leftKeys.contains($0) }
            bindings.keys = Engine.keyArray(subjects)
        }
        guard !subjects.isEmpty else {
            return BatchOutcome(picked: keys, subjects: 0, steps: plans.map { _ in (0, 0, []) }, left: left)
        }
        var perSubject = acts.perSubject
        let stepCounts = acts.steps
        let deletedSubjects = acts.deletedSubjects

        // The registry stops naming the subjects: their consent events, under every policy, go with their data. The
        // audit head is locked with it: the block's hash needs the head's, and the records the events.
        var consentEvents = 0
        let erasedAndHead = try await connection.pipeline([
            PostgresStatement(
                """
                SELECT e.subject_key, e.events
                FROM gallra.erase_consent($1, $2::text[]) AS e
                """, [.text(subjectTable), .text(bindings.keys)], prepared: true),
            PostgresStatement(AuditTrail.lockHead, prepared: true),
        ])
        for row in erasedAndHead[0] {
            let events = try row.decode("events", as: Int.self)
            perSubject.add(
                events, subject: try row.decode("subject_key", as: String.self), table: Self.consentEvents,
                action: .deleted)
            consentEvents += events
        }

        let (records, audited) = perSubject.records(of: subjects) { subject in
            digester.digest(table: subjectTable, key: subject)
        }
        // The block, its records and the head go with COMMIT, as do the statements below.
        try AuditTrail.enqueueAppend(
            records: records, after: erasedAndHead[1], run: runID, policy: name, policyVersion: policy.version,
            keyCheck: digester.keyCheck, on: connection)
        // Their ended holds name them by digest from now on, as the audit trail does.
        let deletesSubjectRow = planner.deletesSubjectRow
        let forget = Holds.forgetKeys(
            subjectTable: subjectTable, keys: subjects, digests: records.map(\.subjectDigest),
            erased: subjects.map { deletesSubjectRow || deletedSubjects.contains($0) }, policy: name,
            asOf: bindings.asOf)
        connection.enqueue(forget.sql, forget.parameters, prepared: true)
        if !deletesSubjectRow {
            // Subjects whose row remains; a subject row deleted (by a delete-or-anonymize) is gone with its key.
            let remaining =
                deletedSubjects.isEmpty
                ? bindings.keys : Engine.keyArray(subjects.filter { !deletedSubjects.contains($0) })
            connection.enqueue(
                """
                INSERT INTO gallra.processed (policy, subject_key, run)
                SELECT $1, k, $2::uuid FROM unnest($3::text[]) AS k
                """,
                [.text(name), .text(runID), .text(remaining)], prepared: true)
        }
        return BatchOutcome(
            picked: keys, subjects: subjects.count, steps: stepCounts, consentEvents: consentEvents, left: left,
            audited: audited)
    }

    /// How long a batch's steps wait for a row lock before they look for the subjects whose owned rows another
    /// transaction holds (``StepPlan/lockFree``), to leave them rather than wait for `lock_timeout`.
    static let lockProbe: Duration = .milliseconds(100)

    /// Sets the transaction's `lock_timeout`, with the statement that comes next.
    func setLockTimeout(_ timeout: Duration, on connection: isolated PostgresConnection) {
        connection.enqueue(
            "SELECT set_config('lock_timeout', $1, true)", [.text(Self.milliseconds(timeout))], prepared: true)
    }

    /// The subjects of `subjects` with a row another transaction holds, found without waiting by each plan's
    /// `probe`: ``StepPlan/lockFree`` for the rows a step owns, ``StepPlan/captureLockFree`` for the rows the
    /// subjects point to. The rows of the others are locked from here on.
    func busySubjects(
        _ subjects: [String], probe: KeyPath<StepPlan, PlannedStatement?>, plans: [StepPlan],
        bindings: Engine.Bindings, on connection: isolated PostgresConnection
    ) async throws -> [LeftSubject] {
        let subjectTable = policy.resolved.subject.table.description
        var bindings = bindings
        var remaining = subjects
        var left: [LeftSubject] = []
        for plan in plans {
            guard let lockFree = plan[keyPath: probe], !remaining.isEmpty else { continue }
            bindings.keys = Engine.keyArray(remaining)
            let busy = Set(
                try await connection.query(lockFree.sql, Engine.values(lockFree, bindings)).map {
                    try $0.decode("subject", as: String.self)
                })
            guard !busy.isEmpty else { continue }
            for subject in remaining where busy.contains(subject) {
                left.append(
                    LeftSubject(
                        key: subject, digest: digester.digest(table: subjectTable, key: subject),
                        reason: .rowLocked, table: plan.step.table.description))
            }
            remaining.removeAll { busy.contains($0) }
        }
        return left
    }

    /// The rows the batch's subjects point to (``StepPlan/capture``), identified and locked.
    func capture(
        plans: [StepPlan], bindings: Engine.Bindings, on connection: isolated PostgresConnection
    ) async throws -> [Int: [CapturedRow]] {
        let capturing = plans.compactMap { plan in plan.capture.map { (plan.index, $0) } }
        guard !capturing.isEmpty else { return [:] }
        let results = try await connection.pipeline(
            capturing.map { PostgresStatement($0.1.sql, Engine.values($0.1, bindings), prepared: true) })
        var captured: [Int: [CapturedRow]] = [:]
        for ((index, _), result) in zip(capturing, results) {
            captured[index] = try result.map {
                CapturedRow(
                    subject: try $0.decode("subject", as: String.self), row: try $0.decode("row", as: String.self),
                    shared: try $0.decode("shared", as: Bool.self), step: try $0.decode("step", as: Int.self))
            }
        }
        return captured
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
    /// Subjects of the batch left to a later run (a row locked by another transaction, or refused by the database).
    var left: [LeftSubject] = []
    /// The rows of the batch's audit records, summed per table and action.
    var audited: [AuditCountKey: Int] = [:]
}

/// A row a batch's subject points to, as its capture found it.
struct CapturedRow {
    var subject: String
    var row: String
    var shared: Bool
    /// The step (place in the apply order) the row counts under.
    var step: Int
}
