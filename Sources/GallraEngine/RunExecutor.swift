import Foundation
import GallraPolicy
import GallraPostgres
import Logging
import Synchronization

/// Runs policies: live (batched, audited deletes and anonymizations) or dry (one read-only transaction that
/// counts what a live run at the same instant would do).
///
/// A live batch is one transaction: pick and lock up to `batch_size` due subjects (`SKIP LOCKED`) in key
/// order, identify and lock the rows they point to, run every step on exactly those subjects, append one
/// audit block, remember processed subjects whose row remains, commit. Rows never travel through gallra:
/// statements return per-subject counts, and for rows the subject points to their keys.
public struct Engine: Sendable {
    /// The session-level advisory lock held by the one live runner of a database.
    public static let runnerLockKey: Int64 = 0x6761_6C6C_7261_0002

    let connection: PostgresConnection
    let auditKey: AuditKey?
    let logger: Logger

    /// An engine on `connection`; live runs need `auditKey` (dry runs work without).
    public init(connection: PostgresConnection, auditKey: AuditKey?, logger: Logger = Logger(label: "gallra.engine")) {
        self.connection = connection
        self.auditKey = auditKey
        self.logger = logger
    }

    // MARK: - The runner lock

    /// Waits for the runner lock (session level: held until released or the connection closes).
    public static func acquireRunnerLock(on connection: PostgresConnection) async throws {
        try await connection.execute("SELECT pg_advisory_lock($1)", [.int64(runnerLockKey)])
    }

    /// Takes the runner lock if no other session holds it.
    public static func tryAcquireRunnerLock(on connection: PostgresConnection) async throws -> Bool {
        let result = try await connection.query("SELECT pg_try_advisory_lock($1) AS locked", [.int64(runnerLockKey)])
        return try result.first?.decode("locked", as: Bool.self) ?? false
    }

    /// The server process holding the runner lock of the current database, if any.
    public static func runnerLockHolder(on connection: PostgresConnection) async throws -> Int32? {
        let result = try await connection.query(
            """
            SELECT pid FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND objsubid = 1
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid
            """, [.int64(runnerLockKey)])
        return try result.first?.decode("pid", as: Int32.self)
    }

    /// Releases the runner lock.
    public static func releaseRunnerLock(on connection: PostgresConnection) async throws {
        try await connection.execute("SELECT pg_advisory_unlock($1)", [.int64(runnerLockKey)])
    }

    /// Marks the live runs left `running` by a gallra that died (killed, or its host lost) as `interrupted`;
    /// their committed batches stay done and audited. Call it only while holding the runner lock: then no
    /// other live run can be in progress. Returns how many runs it closed.
    @discardableResult
    public static func closeAbandonedRuns(on connection: PostgresConnection) async throws -> Int {
        try await connection.execute(
            "UPDATE gallra.run SET outcome = 'interrupted' WHERE mode = 'live' AND outcome = 'running'")
    }

    // MARK: - Running

    /// Runs `policies` in order. A failing policy is recorded and the others go on; cancellation stops the run
    /// between batches (a batch in flight rolls back) with outcome `interrupted`.
    public func run(
        _ policies: [RunPolicy], options: RunOptions, progress: @escaping @Sendable (RunProgress) -> Void = { _ in }
    ) async throws -> RunReport {
        switch options.mode {
        case .dry: return try await dryRun(policies, options: options)
        case .live: return try await liveRun(policies, options: options, progress: progress)
        }
    }

    func liveRun(
        _ policies: [RunPolicy], options: RunOptions, progress: @escaping @Sendable (RunProgress) -> Void
    ) async throws -> RunReport {
        guard let auditKey else {
            throw RunError(
                "live runs need the audit key (audit.key_file in the configuration, or the credential audit-key) to write the audit trail; dry runs work without it"
            )
        }
        try await Schema.requireCurrent(on: connection)
        let asOf = try await instant(options.asOf)
        let runID = UUID().uuidString.lowercased()
        try await connection.execute(
            """
            INSERT INTO gallra.run (id, mode, trigger, as_of, host, pid, gallra_version)
            VALUES ($1::uuid, 'live', $2, $3, $4, $5, $6)
            """,
            [
                .text(runID), .text(options.trigger), .timestamptz(asOf), .text(ProcessInfo.processInfo.hostName),
                .int32(ProcessInfo.processInfo.processIdentifier), options.gallraVersion.map { .text($0) } ?? .null,
            ])
        var logger = logger
        logger[metadataKey: "run.id"] = "\(runID)"
        logger.notice(
            "run started (\(options.trigger)): \(policies.map(\.resolved.name.rawValue).joined(separator: ", "))",
            metadata: JournalEvent.runStarted.metadata(["run.trigger": "\(options.trigger)", "dry_run": "false"]))
        var reports: [PolicyRunReport] = []
        var interrupted = false
        for policy in policies {
            var report = PolicyRunReport(
                name: policy.resolved.name.rawValue, version: policy.version, state: policy.state)
            guard policy.state == .active else {
                report.skipped = "the policy is \(policy.state.rawValue): live runs act only on active policies"
                reports.append(report)
                continue
            }
            if interrupted || Task.isCancelled {
                interrupted = true
                report.skipped = "the run was interrupted before this policy"
                reports.append(report)
                continue
            }
            let live = LivePolicyRun(
                engine: self, policy: policy, options: options, asOf: asOf, runID: runID, auditKey: auditKey,
                logger: logger, progress: progress)
            do {
                try await live.run(&report)
            } catch {
                if Task.isCancelled || error is CancellationError {
                    interrupted = true
                } else {
                    report.failure = Self.describe(error)
                    logger.error(
                        "policy failed: \(report.failure ?? "")", metadata: ["policy": "\(report.name)"])
                }
            }
            if report.skipped == nil { Self.logProcessed(report, dryRun: false, logger: logger) }
            reports.append(report)
        }
        let outcome = interrupted ? .interrupted : Self.outcome(reports)
        // The closing update runs even when the task was cancelled (a detached task is not).
        let connection = self.connection
        let counts = try Self.countsJSON(reports)
        let head = try await Task.detached { () async throws -> RunReport.AuditHead? in
            try await connection.execute(
                "UPDATE gallra.run SET finished_at = clock_timestamp(), outcome = $2, counts = $3 WHERE id = $1::uuid",
                [.text(runID), .text(outcome.rawValue), .jsonb(counts)])
            let row = try await connection.query("SELECT sequence, hash FROM gallra.audit_head").first
            return try row.map {
                RunReport.AuditHead(
                    sequence: try $0.decode("sequence", as: Int64.self), hash: try $0.decode("hash", as: String.self))
            }
        }.value
        let subjects = reports.reduce(0) { $0 + $1.processed }
        let rows = reports.reduce(0) { $0 + $1.steps.reduce(0) { $0 + $1.rows } }
        logger.notice(
            "run finished: \(outcome.rawValue); \(subjects) subjects processed, \(rows) rows changed",
            metadata: JournalEvent.runFinished.metadata([
                "run.outcome": "\(outcome.rawValue)", "subjects": "\(subjects)", "rows": "\(rows)", "dry_run": "false",
            ]))
        logger.notice(
            "audit head: \(head.map { "block \($0.sequence) \($0.hash)" } ?? "none")",
            // GALLRA_AUDIT_HEAD in the journal: a copy of the chain's head outside the database
            // (`gallra audit verify --expect-head`).
            metadata: JournalEvent.auditHead.metadata([
                "audit.sequence": "\(head?.sequence ?? 0)", "audit.head": "\(head?.hash ?? "")",
                "run.outcome": "\(outcome.rawValue)",
            ]))
        return RunReport(
            runID: runID, mode: .live, asOf: Self.iso8601(asOf), trigger: options.trigger, outcome: outcome,
            policies: reports, auditHead: head)
    }

    /// The "policy processed" event of one policy of a run, and one line per table and action with rows.
    public static func logProcessed(_ report: PolicyRunReport, dryRun: Bool, logger: Logger) {
        let rows = report.steps.reduce(0) { $0 + $1.rows }
        var metadata: Logger.Metadata = [
            "policy": "\(report.name)", "policy.version": "\(report.version)", "subjects": "\(report.processed)",
            "rows": "\(rows)", "dry_run": "\(dryRun)",
        ]
        if let refused = report.refused { metadata["policy.refused"] = "\(refused.expiring)" }
        let text =
            "\(report.name) v\(report.version): \(report.processed) subjects \(dryRun ? "would be " : "")processed, "
            + "\(rows) rows \(dryRun ? "would change" : "changed"), \(report.expiring) expiring, "
            + "\(report.exempted) exempted"
        logger.notice("\(text)", metadata: JournalEvent.policyProcessed.metadata(metadata))
        for table in report.tables {
            for (action, count) in [
                ("delete", table.deleted), ("anonymize", table.anonymized), ("retain", table.retained),
            ]
            where count > 0 {
                logger.info(
                    "\(report.name): \(table.table) \(action) \(count) rows\(dryRun ? " (dry run)" : "")",
                    metadata: [
                        "policy": "\(report.name)", "policy.version": "\(report.version)", "table": "\(table.table)",
                        "action": "\(action)", "rows": "\(count)", "dry_run": "\(dryRun)",
                    ])
            }
        }
    }

    /// The run's instant: the given one, or the server's `now()`.
    func instant(_ given: Date?) async throws -> PostgresTimestamp {
        if let given { return PostgresTimestamp(given) }
        let row = try await connection.query("SELECT now() AS now").first
        guard let row else { throw PostgresError(.decoding, "SELECT now() returned no row") }
        return try row.decode("now", as: PostgresTimestamp.self)
    }

    static func outcome(_ reports: [PolicyRunReport]) -> RunReport.Outcome {
        if reports.contains(where: { $0.failure != nil }) { return .failed }
        if reports.contains(where: { $0.refused != nil }) { return .refused }
        if reports.contains(where: { !$0.skippedBatches.isEmpty || $0.stillDue > 0 }) { return .partial }
        return .done
    }

    static func countsJSON(_ reports: [PolicyRunReport]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(reports), as: UTF8.self)
    }

    static func iso8601(_ timestamp: PostgresTimestamp) -> String {
        timestamp.iso8601Milliseconds
    }

    /// An error's text for reports and logs: generic (``PostgresError`` never includes row values).
    static func describe(_ error: any Error) -> String {
        String(describing: error)
    }

    /// Errors that concern one batch (lock conflicts, timeouts, serialization failures, deadlocks, and
    /// constraint or trigger errors raised by the batch's rows): retried, then the batch is skipped. Anything
    /// else (a missing table, a privilege, a lost connection) fails the policy.
    static func isBatchError(_ error: any Error) -> Bool {
        guard let error = error as? PostgresError, error.code != .cancelled else { return false }
        if error.isRetryable || error.isQueryCanceled { return true }
        guard error.code == .server || error.code == .transactionRolledBack, let state = error.sqlState else {
            return false
        }
        return [.integrityConstraintViolation, .dataException, .plpgsqlError, .transactionRollback].contains(
            state.errorClass)
    }

    // MARK: - Binding

    /// Runtime values of one statement.
    struct Bindings {
        var asOf: PostgresTimestamp
        var policyName: String
        /// The live run's id (dry runs write nothing and leave it empty).
        var runID: String = ""
        var keys: String = "[]"
        var afterKey: String?
        var upToKey: String?
        var limit: Int = 0
        var salt: String = ""
        var rows: String = "[]"
    }

    static func values(_ statement: PlannedStatement, _ bindings: Bindings) -> [PostgresValue] {
        statement.parameters.map { parameter in
            switch parameter {
            case .asOf: .timestamptz(bindings.asOf)
            case .keys: .jsonb(bindings.keys)
            case .afterKey: bindings.afterKey.map { .text($0) } ?? .null
            case .upToKey: bindings.upToKey.map { .text($0) } ?? .null
            case .limit: .int64(Int64(bindings.limit))
            case .salt: .text(bindings.salt)
            case .policyName: .text(bindings.policyName)
            case .runID: .text(bindings.runID)
            case .rows: .jsonb(bindings.rows)
            case .interval(let text): .interval(text)
            case .json(let text): .jsonb(text)
            case .text(let text): text.map { .text($0) } ?? .null
            }
        }
    }

    /// A JSON array of strings.
    static func jsonArray(_ texts: [String]) -> String {
        JSONValue.array(texts.map(JSONValue.string)).canonicalText
    }
}

/// The batch's picked keys, kept outside the transaction: the first attempt's fix the batch's range, and the last
/// attempt's are the subjects of a skipped batch.
final class PickedKeys: Sendable {
    private let state = Mutex<(keys: [String], range: [String]?)>(([], nil))

    /// Records an attempt's keys; true for the first attempt that picked.
    func set(_ keys: [String]) -> Bool {
        state.withLock {
            $0.keys = keys
            guard $0.range == nil else { return false }
            $0.range = keys
            return true
        }
    }
    /// The last attempt's keys.
    var value: [String] { state.withLock { $0.keys } }
    /// The first attempt's keys, once it picked.
    var range: [String]? { state.withLock { $0.range } }
}

/// What one committed batch did.
struct BatchOutcome: Sendable {
    /// Keys picked (and locked), in key order; empty when no due subject is left.
    var picked: [String]
    /// Subjects processed (still due once locked).
    var subjects: Int
    /// Per step: rows acted on, and the rows retained (their identities, for rows the subject points to).
    var steps: [(rows: Int, retained: Set<String>)]
}

/// One policy of a live run.
struct LivePolicyRun: Sendable {
    let engine: Engine
    let policy: RunPolicy
    let options: RunOptions
    let asOf: PostgresTimestamp
    let runID: String
    let auditKey: AuditKey
    let logger: Logger
    let progress: @Sendable (RunProgress) -> Void

    var name: String { policy.resolved.name.rawValue }

    func run(_ report: inout PolicyRunReport) async throws {
        let planner = try Planner(policy.resolved)
        let plans = planner.stepPlans()
        let connection = engine.connection
        let limits = policy.resolved.policy.limits
        var bindings = Engine.Bindings(asOf: asOf, policyName: name, runID: runID)
        bindings.salt = Digest.hex(Digest.hmacSHA256(key: auditKey.bytes, message: Array("hash:\(name)".utf8)))

        let counts = planner.countSubjects()
        let row = try await connection.query(counts.sql, Engine.values(counts, bindings)).first
        report.expiring = try row?.decode("expiring", as: Int.self) ?? 0
        report.exempted = try row?.decode("exempted", as: Int.self) ?? 0
        report.steps = plans.map {
            StepCounts(
                dataPoint: $0.step.dataPoint, table: $0.step.table.description,
                action: $0.deletes ? "delete" : "anonymize", rows: 0, retained: 0)
        }
        defer { report.tables = Self.tables(report.steps) }
        if let refusal = try await Self.guardRefusal(
            planner: planner, expiring: report.expiring, limits: limits, on: connection)
        {
            if options.allowLarge {
                logger.warning(
                    "guard overridden with --allow-large: \(refusal)", metadata: ["policy": "\(name)"])
            } else {
                report.refused = refusal
                logger.critical(
                    "policy refused: \(refusal)",
                    metadata: JournalEvent.policyRefused.metadata([
                        "policy": "\(name)", "policy.version": "\(policy.version)", "subjects": "\(report.expiring)",
                    ]))
                return
            }
        }

        let cap = options.allowLarge ? Int.max : limits.maxSubjectsPerRun
        let total = min(report.expiring, cap)
        let tally = BatchTally(report: report, cap: cap, batchSize: limits.batchSize, total: total)
        let connections = await self.connections(total: total, limits: limits)
        let shared = bindings
        await withTaskGroup(of: Void.self) { group in
            for connection in connections {
                group.addTask {
                    await self.work(on: connection, planner: planner, plans: plans, bindings: shared, tally: tally)
                }
            }
        }
        for extra in connections.dropFirst() { await extra.close() }
        report = await tally.report
        if let failure = await tally.failure { throw failure }
        if report.processed < total {
            // Subjects the batches did not take: those of skipped batches, and those another transaction had
            // locked when their batch picked (SKIP LOCKED), or no longer due. Say how many are left.
            let row = try await connection.query(counts.sql, Engine.values(counts, bindings)).first
            report.stillDue = try row?.decode("expiring", as: Int.self) ?? 0
            if report.stillDue > 0 {
                logger.warning(
                    "\(report.stillDue) subject(s) still due after the last batch (in skipped batches or locked by another transaction); a later run takes them",
                    metadata: ["policy": "\(name)"])
            }
        }
    }

    /// The connections the policy's batches run on: the run's own, and for `limits.parallel` the others
    /// `options.connect` opens (no more than the batches need). A connection that cannot be opened is logged and
    /// the run goes on with those it has.
    func connections(total: Int, limits: Limits) async -> [PostgresConnection] {
        var connections = [engine.connection]
        let batches = (total + limits.batchSize - 1) / max(1, limits.batchSize)
        guard let connect = options.connect else { return connections }
        while connections.count < min(limits.parallel, batches) {
            do {
                connections.append(try await connect())
            } catch {
                logger.warning(
                    "cannot open another connection for parallel batches (limits.parallel \(limits.parallel)); going on with \(connections.count): \(Engine.describe(error))",
                    metadata: ["policy": "\(name)"])
                break
            }
        }
        return connections
    }

    /// One connection's batches: takes the next range of subjects in turn, runs it as one transaction, pauses,
    /// and again, until no due subject is left, the run's cap is reached, or a batch fails the policy (the
    /// error goes to `tally`; the other connections finish the batch they are in).
    func work(
        on connection: PostgresConnection, planner: Planner, plans: [StepPlan], bindings: Engine.Bindings,
        tally: BatchTally
    ) async {
        var claim: BatchClaim?
        do {
            while true {
                try Task.checkCancellation()
                claim = await tally.claim()
                guard let claim else { return }
                // Only the connection whose turn it is to pick waits for the standbys: pauses do not overlap.
                if let throttle = options.throttle {
                    let done = await tally.processed
                    var throttled = 0.0
                    do {
                        try await throttle.waitWhileLagging(
                            logger: logger, metadata: ["policy": "\(name)", "policy.version": "\(policy.version)"],
                            throttledSeconds: &throttled
                        ) { excess in
                            progress(
                                RunProgress(
                                    policy: name, subjectsDone: done, subjectsTotal: tally.total, rowsPerSecond: 0,
                                    estimatedRemaining: nil, pausedBy: "\(excess)"))
                        }
                    } catch {
                        await tally.addThrottled(throttled)
                        throw error
                    }
                    await tally.addThrottled(throttled)
                }
                let batchStarted = ContinuousClock.now
                guard let outcome = try await self.attempts(claim, connection, planner, plans, bindings, tally)
                else { continue }
                let current = await tally.finished(claim, outcome)
                progress(current)
                // A pick took fewer keys than it asked for: no due subject is left after it, so no pause. (Not this
                // batch's own count: a retry picks within its first attempt's range, and may find fewer there.)
                if await tally.exhausted { return }
                // Reported again during a long pause, so that the daemon's watchdog stays fed (`pause` may be an
                // hour).
                try await Pacing.pause(
                    policy.resolved.policy.limits.pause.after(batch: ContinuousClock.now - batchStarted)
                ) {
                    progress(current)
                }
            }
        } catch {
            await tally.fail(error, claim: claim)
        }
    }

    /// Runs one batch, retrying batch errors with backoff. Returns nil when the batch was skipped after its last
    /// attempt (recorded in `tally`).
    func attempts(
        _ claim: BatchClaim, _ connection: PostgresConnection, _ planner: Planner, _ plans: [StepPlan],
        _ bindings: Engine.Bindings, _ tally: BatchTally
    ) async throws -> BatchOutcome? {
        let picked = PickedKeys()
        var attempt = 0
        while true {
            attempt += 1
            do {
                var batch = bindings
                batch.afterKey = claim.after
                batch.limit = claim.limit
                if let range = picked.range {
                    // A retry picks within the range its first attempt took: the next batch has started after it.
                    guard let last = range.last else { return BatchOutcome(picked: [], subjects: 0, steps: []) }
                    batch.upToKey = last
                }
                let frozen = batch
                return try await connection.transaction { connection in
                    try await self.batch(
                        planner: planner, plans: plans, bindings: frozen, picked: picked, on: connection
                    ) { keys in await tally.picked(claim, keys) }
                }
            } catch {
                if Task.isCancelled { throw CancellationError() }
                guard Engine.isBatchError(error) else { throw error }
                if attempt < options.maxAttempts {
                    try await Task.sleep(for: backoff(attempt))
                    continue
                }
                guard let range = picked.range, !range.isEmpty else { throw error }
                let postgres = error as? PostgresError
                await tally.skipped(
                    claim,
                    BatchFailure(
                        batch: claim.number, subjects: picked.value.count, attempts: attempt,
                        error: Engine.describe(error), sqlState: postgres?.sqlState?.rawValue))
                logger.error(
                    "batch \(claim.number) skipped after \(attempt) attempts: \(Engine.describe(error))",
                    metadata: JournalEvent.batchSkipped.metadata([
                        "policy": "\(name)", "policy.version": "\(policy.version)",
                        "subjects": "\(picked.value.count)",
                    ]))
                return nil
            }
        }
    }

    /// Exponential backoff with up to 50 % jitter.
    func backoff(_ attempt: Int) -> Duration {
        let base = options.retryBackoff * (1 << min(attempt - 1, 10))
        return base + base * Double.random(in: 0..<0.5)
    }

    /// The guard's verdict: nil when the policy is within its limits.
    static func guardRefusal(
        planner: Planner, expiring: Int, limits: Limits, on connection: PostgresConnection
    ) async throws -> GuardRefusal? {
        let estimate = planner.resolved.subject.estimatedRows
        var rows = Int(max(estimate, 0))
        if estimate < 100_000 {
            let count = planner.countTable()
            rows = try await connection.query(count.sql).first?.decode("rows", as: Int.self) ?? 0
        }
        let fraction = Double(expiring) > limits.maxFraction * Double(rows)
        guard expiring > limits.maxSubjectsPerRun || (expiring > 0 && fraction) else { return nil }
        return GuardRefusal(
            expiring: expiring, tableRows: rows, maxSubjectsPerRun: limits.maxSubjectsPerRun,
            maxFraction: limits.maxFraction)
    }

    /// Rows per table and action from the steps' counts.
    static func tables(_ steps: [StepCounts]) -> [TableCounts] {
        var tables: [String: TableCounts] = [:]
        var order: [String] = []
        for step in steps {
            if tables[step.table] == nil {
                order.append(step.table)
                tables[step.table] = TableCounts(table: step.table, deleted: 0, anonymized: 0, retained: 0)
            }
            if step.action == "delete" {
                tables[step.table]?.deleted += step.rows
            } else {
                tables[step.table]?.anonymized += step.rows
            }
            tables[step.table]?.retained += step.retained
        }
        return order.compactMap { tables[$0] }
    }

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
            return BatchOutcome(picked: keys, subjects: 0, steps: plans.map { _ in (0, []) })
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
        var stepCounts: [(rows: Int, retained: Set<String>)] = plans.map { _ in (0, []) }
        for plan in plans {
            let table = plan.step.table.description
            let action: AuditCount.Action = plan.deletes ? .deleted : .anonymized
            if let act = plan.act {
                var rows = 0
                for row in try await connection.query(act.sql, Engine.values(act, bindings)) {
                    let subject = try row.decode("subject", as: String.self)
                    let count = try row.decode("rows", as: Int.self)
                    perSubject.add(count, subject: subject, table: table, action: action)
                    rows += count
                }
                stepCounts[plan.index].rows += rows
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
                for row in acted { stepCounts[counting[row] ?? plan.index].rows += 1 }
                for row in shared { stepCounts[counting[row] ?? plan.index].retained.insert(row) }
                var seen: Set<[String]> = []
                for row in rows where seen.insert([row.subject, row.row]).inserted {
                    if acted.contains(row.row) {
                        perSubject.add(1, subject: row.subject, table: table, action: action)
                    } else if shared.contains(row.row) {
                        perSubject.add(1, subject: row.subject, table: table, action: .retained)
                    }
                }
            }
        }

        let digester = auditKey.digester
        let subjectTable = policy.resolved.subject.table.description
        let records = subjects.map { subject in
            AuditRecord(
                subjectDigest: digester.digest(table: subjectTable, key: subject),
                counts: perSubject.counts(of: subject))
        }
        try await AuditTrail.append(
            records: records, run: runID, policy: name, policyVersion: policy.version, on: connection)
        if !planner.deletesSubjectRow {
            try await connection.execute(
                """
                INSERT INTO gallra.processed (policy, subject_key, run)
                SELECT $1, k, $2::uuid FROM jsonb_array_elements_text($3::jsonb) AS k
                """,
                [.text(name), .text(runID), .jsonb(bindings.keys)])
        }
        return BatchOutcome(picked: keys, subjects: subjects.count, steps: stepCounts)
    }

    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms"
    }
}

/// A row a batch's subject points to, as its capture found it.
struct CapturedRow {
    var subject: String
    var row: String
    var shared: Bool
    /// The step (place in the apply order) the row counts under.
    var step: Int
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
