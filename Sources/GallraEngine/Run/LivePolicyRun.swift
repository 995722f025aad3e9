import GallraPolicy
import GallraPostgres
import Logging

/// One policy of a live run.
struct LivePolicyRun: Sendable {
    let engine: Engine
    let policy: RunPolicy
    let options: RunOptions
    let asOf: PostgresTimestamp
    let runID: String
    let auditKey: AuditKey
    /// Keyed once per run: each subject's digest copies its state.
    let digester: SubjectDigester
    let logger: Logger
    let progress: @Sendable (RunProgress) -> Void

    var name: String { policy.resolved.name.rawValue }

    func run(_ report: inout PolicyRunReport) async throws {
        let planner = try Planner(policy.resolved, requests: policy.requests, replaying: policy.replayKeys != nil)
        let plans = planner.stepPlans()
        let connection = engine.connection
        let limits = policy.resolved.policy.limits
        var bindings = Engine.Bindings(asOf: asOf, policyName: name, runID: runID)
        if let keys = policy.replayKeys { bindings.replayKeys = Engine.keyArray(keys) }
        bindings.salt = Digest.hex(Digest.hmacSHA256(key: auditKey.bytes, message: Array("hash:\(name)".utf8)))

        let counts = planner.countSubjects()
        let row = try await connection.query(counts.sql, Engine.values(counts, bindings)).first
        report.expiring = try row?.decode("expiring", as: Int.self) ?? 0
        report.exempted = try row?.decode("exempted", as: Int.self) ?? 0
        let held = try row?.decode("held", as: Int.self) ?? 0
        report.held = held > 0 ? held : nil
        report.steps = plans.map {
            StepCounts(
                dataPoint: $0.step.dataPoint, table: $0.step.table.description,
                action: $0.countedAction, rows: 0, retained: 0, anonymized: $0.deletesOrAnonymizes ? 0 : nil)
        }
        defer { report.tables = PolicyRunReport.tables(report.steps) }
        if let refusal = try await Self.guardRefusal(
            planner: planner, expiring: report.expiring, limits: limits, on: connection)
        {
            if options.allowLarge {
                logger.warning(
                    "guard overridden with --allow-large: \(refusal)", metadata: ["policy": "\(name)"])
            } else {
                report.refused = refusal
                RunMetrics.refused(policy: name)
                if policy.requests == .due { RunMetrics.due(policy: name, subjects: report.expiring) }
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
        var roundTrips = 0
        for connection in connections { roundTrips -= await connection.roundTrips }
        await withTaskGroup(of: Void.self) { group in
            for connection in connections {
                group.addTask {
                    await self.work(on: connection, planner: planner, plans: plans, bindings: shared, tally: tally)
                }
            }
        }
        for connection in connections { roundTrips += await connection.roundTrips }
        for extra in connections.dropFirst() { await extra.close() }
        report = await tally.report
        // How often the batches waited for the server, which is what a batch costs beyond the server's own work.
        logger.debug(
            "\(name): \(report.batches) batches, \(roundTrips) round trips to the server",
            metadata: [
                "policy": "\(name)", "batches": "\(report.batches)", "round_trips": "\(roundTrips)",
                "connections": "\(connections.count)",
            ])
        if let failure = await tally.failure { throw failure }
        if report.processed < total {
            // Subjects the batches did not take: those they left, those of skipped batches, and those another
            // transaction had locked when their batch picked (SKIP LOCKED), or no longer due. Say how many are left.
            let row = try await connection.query(counts.sql, Engine.values(counts, bindings)).first
            report.stillDue = try row?.decode("expiring", as: Int.self) ?? 0
            if report.stillDue > 0 {
                logger.warning(
                    "\(report.stillDue) subject(s) still due after the last batch (left, in skipped batches, or locked by another transaction); a later run takes them",
                    metadata: ["policy": "\(name)"])
            }
        }
        // Known without another count: those the fresh count found, or those beyond the run's cap.
        if policy.requests == .due {
            RunMetrics.due(
                policy: name,
                subjects: report.processed < total ? report.stillDue : report.expiring - report.processed)
        }
        let pruned = try await prune(planner: planner)
        report.pruned = pruned > 0 ? pruned : nil
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
                    if throttled > 0 { RunMetrics.replicaLagPause(policy: name, seconds: throttled) }
                }
                let batchStarted = ContinuousClock.now
                guard let outcome = try await self.attempts(claim, connection, planner, plans, bindings, tally)
                else { continue }
                let current = await tally.finished(claim, outcome, duration: ContinuousClock.now - batchStarted)
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
}
