#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraPolicy
import GallraPostgres

extension Engine {
    /// A dry run: one `READ ONLY` transaction at `REPEATABLE READ`, so it cannot write and every count reads
    /// the same snapshot. Counts are set-based over every due subject at the instant (no batches).
    ///
    /// The numbers equal what a live run at the same instant then does, whatever its batches: subjects, rows
    /// deleted, anonymized and retained. Both judge shared rows against every due subject, so a row the subject
    /// points to that two due subjects in different batches use is acted on once, in the first of those batches;
    /// the live run records it in `gallra.processed_row` and the later batch leaves it out, as do later runs and
    /// this count (so a dry run after a run cut short between batches predicts the rest exactly). A shared row
    /// such subjects use is retained in each of their batches and counted once per run, as here.
    func dryRun(_ policies: [RunPolicy], options: RunOptions) async throws -> RunReport {
        try await Schema.requireCurrent(on: connection)
        let given = options.asOf.map(PostgresTimestamp.init)
        let (asOf, reports) = try await connection.transaction(isolation: .repeatableRead, readOnly: true) {
            connection in
            // The counts are one large statement per policy: its cost estimate passes `jit_above_cost` on any
            // sizeable shop, and compiling it takes longer than running it (0.5 to 1 s of 1.3 to 1.9 s at 100,000
            // customers). For this transaction only.
            try await connection.execute("SET LOCAL jit = off")
            let asOf: PostgresTimestamp
            if let given {
                asOf = given
            } else {
                let row = try await connection.query("SELECT now() AS now").first
                guard let row else { throw PostgresError(.decoding, "SELECT now() returned no row") }
                asOf = try row.decode("now", as: PostgresTimestamp.self)
            }
            var reports: [PolicyRunReport] = []
            for policy in policies {
                var report = PolicyRunReport(
                    name: policy.resolved.name.rawValue, version: policy.version, state: policy.state)
                do {
                    try await connection.execute("SAVEPOINT gallra_policy")
                    try await Self.dryPolicy(policy, options: options, asOf: asOf, into: &report, on: connection)
                    try await connection.execute("RELEASE SAVEPOINT gallra_policy")
                } catch {
                    if Task.isCancelled { throw error }
                    report.failure = PolicyFailure(error)
                    try await connection.execute("ROLLBACK TO SAVEPOINT gallra_policy")
                }
                reports.append(report)
            }
            return (asOf, reports)
        }
        return RunReport(
            runID: UUID().uuidString.lowercased(), mode: .dry, asOf: Self.iso8601(asOf), trigger: options.trigger,
            outcome: Self.outcome(reports), policies: reports, auditHead: nil)
    }

    static func dryPolicy(
        _ policy: RunPolicy, options: RunOptions, asOf: PostgresTimestamp, into report: inout PolicyRunReport,
        on connection: isolated PostgresConnection
    ) async throws {
        let planner = try Planner(policy.resolved, requests: policy.requests)
        let limits = policy.resolved.policy.limits
        var bindings = Bindings(asOf: asOf, policyName: policy.resolved.name.rawValue)
        let counts = planner.dryRunCounts()
        var steps: [Int: (rows: Int, retained: Int, anonymized: Int)] = [:]
        for row in try await connection.query(counts.sql, values(counts, bindings)) {
            let acted = try row.decode("acted", as: Int.self)
            let retained = try row.decode("retained", as: Int.self)
            if let step = try row.decode("step", as: Int?.self) {
                steps[step] = (acted, retained, try row.decode("anonymized", as: Int.self))
            } else {
                report.expiring = acted
                report.exempted = retained
                let held = try row.decode("held", as: Int.self)
                report.held = held > 0 ? held : nil
            }
        }
        let refusal = try await LivePolicyRun.guardRefusal(
            planner: planner, expiring: report.expiring, limits: limits, on: connection)
        if !options.allowLarge { report.refused = refusal }
        let cap = options.allowLarge ? Int.max : limits.maxSubjectsPerRun
        report.processed = report.refused == nil ? min(report.expiring, cap) : 0
        report.batches = (report.processed + limits.batchSize - 1) / max(1, limits.batchSize)
        if report.processed > 0 {
            bindings.limit = report.processed
            let events = planner.countConsentEvents()
            let count = try await connection.query(events.sql, values(events, bindings)).first?.decode(
                "events", as: Int.self)
            if let count, count > 0 { report.consentEvents = count }
        }
        for (index, step) in policy.resolved.steps.enumerated() {
            report.steps.append(
                StepCounts(
                    dataPoint: step.dataPoint, table: step.table.description,
                    action: StepCounts.Action(step.action), rows: steps[index]?.rows ?? 0,
                    retained: steps[index]?.retained ?? 0,
                    anonymized: step.action.mayDelete && step.action.mayAnonymize ? steps[index]?.anonymized ?? 0 : nil)
            )
        }
        report.tables = PolicyRunReport.tables(report.steps)
        if options.showKeys > 0 {
            bindings.limit = options.showKeys
            let first = planner.firstKeys()
            report.keys = try await connection.query(first.sql, values(first, bindings)).map {
                try $0.decode("key", as: String.self)
            }
        }
    }
}
