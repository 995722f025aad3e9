#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraPolicy
import GallraPostgres
import Logging

/// A live run: the run's row in `gallra.run`, each policy in turn, the closing counts and the audit head.
extension Engine {
    func liveRun(
        _ policies: [RunPolicy], options: RunOptions, progress: @escaping @Sendable (RunProgress) -> Void
    ) async throws -> RunReport {
        guard let auditKey else {
            throw RunError.missingAuditKey
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
        var lost: PostgresError?
        let digester = auditKey.digester
        for policy in policies {
            var report = PolicyRunReport(
                name: policy.resolved.name.rawValue, version: policy.version, state: policy.state)
            if let notActive = SkipReason(notActive: policy.state) {
                report.skipped = notActive
                reports.append(report)
                continue
            }
            if interrupted || Task.isCancelled {
                interrupted = true
                report.skipped = .interrupted
                reports.append(report)
                continue
            }
            let live = LivePolicyRun(
                engine: self, policy: policy, options: options, asOf: asOf, runID: runID, auditKey: auditKey,
                digester: digester, logger: logger, progress: progress)
            do {
                try await live.run(&report)
            } catch {
                if Task.isCancelled || error is CancellationError {
                    interrupted = true
                } else if let postgres = error as? PostgresError, postgres.isServerUnavailable {
                    // The server went away: the policies left cannot run; the batches committed stay done.
                    interrupted = true
                    lost = postgres
                    report.failure = PolicyFailure(error)
                    logger.error(
                        "run interrupted, the database went away: \(postgres)", metadata: ["policy": "\(report.name)"])
                } else {
                    report.failure = PolicyFailure(error)
                    logger.error(
                        "policy failed: \(report.failure?.rawValue ?? "")", metadata: ["policy": "\(report.name)"])
                }
            }
            if report.skipped == nil { Self.logProcessed(report, dryRun: false, logger: logger) }
            reports.append(report)
        }
        let outcome = interrupted ? .interrupted : Self.outcome(reports)
        let head: RunReport.AuditHead?
        do {
            head = try await close(
                runID: runID, outcome: outcome, reports: reports, options: options, lost: lost != nil)
        } catch  where lost != nil {
            logger.error(
                "the run's outcome could not be recorded (\(error)); the next run marks it interrupted",
                metadata: ["run.outcome": "\(outcome.rawValue)"])
            head = nil
        }
        RunMetrics.run(outcome, policies: reports, finishedAt: Date().timeIntervalSince1970)
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
        let report = RunReport(
            runID: runID, mode: .live, asOf: Self.iso8601(asOf), trigger: options.trigger, outcome: outcome,
            policies: reports, auditHead: head)
        if let lost { throw RunInterruption(report: report, cause: lost) }
        return report
    }

    /// Records the run's outcome and counts in `gallra.run` and reads the audit head: on the run's connection, or
    /// when the server ended that one (`lost`), on a fresh connection. Runs even when the task was cancelled (a
    /// detached task is not).
    private func close(
        runID: String, outcome: RunReport.Outcome, reports: [PolicyRunReport], options: RunOptions, lost: Bool
    ) async throws -> RunReport.AuditHead? {
        let counts = try Self.countsJSON(reports)
        let (own, connect) = (connection, options.connect)
        return try await Task.detached { () async throws -> RunReport.AuditHead? in
            let fresh = lost ? try await connect?() : nil
            let connection = fresh ?? own
            do {
                try await connection.execute(
                    "UPDATE gallra.run SET finished_at = clock_timestamp(), outcome = $2, counts = $3 WHERE id = $1::uuid",
                    [.text(runID), .text(outcome.rawValue), .jsonb(counts)])
                let row = try await connection.query("SELECT sequence, hash FROM gallra.audit_head").first
                await fresh?.close()
                return try row.map {
                    RunReport.AuditHead(
                        sequence: try $0.decode("sequence", as: Int64.self),
                        hash: try $0.decode("hash", as: String.self))
                }
            } catch {
                await fresh?.close()
                throw error
            }
        }.value
    }

    /// The "policy processed" event of one policy of a run, and one line per table and action with rows.
    public static func logProcessed(_ report: PolicyRunReport, dryRun: Bool, logger: Logger) {
        let rows = report.steps.reduce(0) { $0 + $1.rows }
        var metadata: Logger.Metadata = [
            "policy": "\(report.name)", "policy.version": "\(report.version)", "subjects": "\(report.processed)",
            "rows": "\(rows)", "dry_run": "\(dryRun)", "held": "\(report.held ?? 0)",
        ]
        if let refused = report.refused { metadata["policy.refused"] = "\(refused.expiring)" }
        let text =
            "\(report.name) v\(report.version): \(report.processed) subjects \(dryRun ? "would be " : "")processed, "
            + "\(rows) rows \(dryRun ? "would change" : "changed"), \(report.expiring) expiring, "
            + "\(report.exempted) exempted, \(report.held ?? 0) held"
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
        if reports.contains(where: { !$0.skippedBatches.isEmpty || $0.leftSubjects != nil || $0.stillDue > 0 }) {
            return .partial
        }
        return .done
    }

    static func countsJSON(_ reports: [PolicyRunReport]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        // Left subjects by their digest only: gallra's tables never hold a key the run did not need to keep.
        let stored = reports.map { report in
            var report = report
            report.leftSubjects = report.leftSubjects?.map(\.stored)
            return report
        }
        return String(decoding: try encoder.encode(stored), as: UTF8.self)
    }

    static func iso8601(_ timestamp: PostgresTimestamp) -> String {
        timestamp.iso8601Milliseconds
    }
}
