// Running policies now: on a trigger, on schedule, or to finish what a lost connection interrupted.
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraEngine
import GallraPolicy
import GallraPostgres
import GallraSystemd
import Logging

extension DaemonLoop {
    /// A trigger: the policies read again (one may have just been stored), then the ones asked for run now.
    func runTriggered(_ request: TriggerRequest, source: String, on connection: PostgresConnection)
        async throws
    {
        try await loadPolicies(on: connection)
        let known = Set(policies.keys)
        let onRequest = request.policies.filter(onRequestPolicies.contains)
        if !onRequest.isEmpty {
            // Run on a trigger, such a policy would erase subjects without deciding their requests.
            logger.notice(
                "trigger: \(onRequest.joined(separator: ", ")) act(s) on erasure requests; processing the due requests instead"
            )
            requestsCheckAt = .now
        }
        for name in request.policies where !known.contains(name) && !onRequestPolicies.contains(name) {
            logger.warning(
                "trigger: no active or draft policy \(name) can run; ignored", metadata: ["policy": "\(name)"])
        }
        let names = request.policies.isEmpty ? known.sorted() : request.policies.filter(known.contains)
        if names.isEmpty && !onRequest.isEmpty { return }
        logger.notice(
            "triggered (\(source)): running \(names.isEmpty ? "nothing" : names.joined(separator: ", ")) now")
        try await execute(names, trigger: source, on: connection)
    }

    /// The settings of the service's live runs, erasure requests' included: timeouts, version, throttle, and
    /// connections for parallel batches.
    func liveOptions(trigger: String, on connection: PostgresConnection) -> RunOptions {
        // The throttle reads pg_stat_replication on the run's own connection, between batches. Made even without
        // bounds (it then reads nothing): a reload during the run may set some.
        let throttle = ReplicaThrottle(
            limits: configuration.replicaLag, source: PostgresReplicaLagSource(connection: connection))
        let (database, password, logger) = (configuration.database, configuration.password, self.logger)
        let idleInTransactionTimeout = configuration.idleInTransactionTimeout
        return RunOptions(
            mode: .live, trigger: trigger, statementTimeout: configuration.statementTimeout,
            lockTimeout: configuration.lockTimeout, gallraVersion: configuration.gallraVersion, throttle: throttle,
            // A policy's parallel batches: connections beyond the run's own, closed when the policy is done.
            connect: {
                try await PostgresConnection.connect(
                    database, password: password, idleInTransactionTimeout: idleInTransactionTimeout, logger: logger)
            })
    }

    /// Runs `names` now: the active ones live, the drafts as a dry run, each recorded in the schedule state.
    func execute(_ names: [String], trigger: String, on connection: PostgresConnection) async throws {
        let selected = names.compactMap { policies[$0] }
        guard !selected.isEmpty else { return }
        let live = selected.filter { $0.state == .active }
        let dry = selected.filter { $0.state == .draft }
        let started = Date()
        let store = ScheduleStateStore(connection: connection)
        interrupted = (selected.map(\.resolved.name.rawValue), trigger)
        try await store.started(selected.map(\.resolved.name.rawValue), at: started)
        scheduler.started(selected.map(\.resolved.name.rawValue), at: started)

        if !live.isEmpty {
            setStatus("purging \(live[0].resolved.name.rawValue)")
            let (notifier, heartbeat) = (self.notifier, self.heartbeat)
            let options = liveOptions(trigger: trigger, on: connection)
            let report: RunReport
            runningThrottle.set(options.throttle)
            defer { runningThrottle.set(nil) }
            do {
                report = try await Engine(connection: connection, auditKey: configuration.auditKey, logger: logger)
                    .run(live, options: options) { progress in
                        // Also called at every poll while batches are paused for replica lag, so that a long
                        // pause keeps the watchdog fed.
                        heartbeat.beat()
                        let done = "\(progress.subjectsDone)/\(progress.subjectsTotal) subjects"
                        try? notifier.status(
                            progress.pausedBy.map { "purging \(progress.policy): \(done); paused: \($0)" }
                                ?? "purging \(progress.policy): \(done)")
                    }
            } catch let interruption as RunInterruption {
                // The server ended the run (its outcome is recorded): connect again and go on.
                await catchUpLedger(on: connection)
                throw interruption.cause
            }
            await catchUpLedger(on: connection)
            let liveNames = live.map(\.resolved.name.rawValue)
            // Recorded even when stopping (a detached task is not cancelled).
            try await Task.detached {
                try await store.finished(liveNames, outcome: report.outcome.rawValue, run: report.runID)
            }.value
            if report.outcome == .interrupted {
                interrupted = nil
                throw CancellationError()
            }
        }
        if !dry.isEmpty, !Task.isCancelled {
            setStatus("dry run of \(dry.map(\.resolved.name.rawValue).joined(separator: ", ")) (drafts)")
            let report = try await Engine(connection: connection, auditKey: nil, logger: logger).run(
                dry, options: RunOptions(mode: .dry, trigger: trigger))
            for policy in report.policies { Engine.logProcessed(policy, dryRun: true, logger: logger) }
            try await store.finished(dry.map(\.resolved.name.rawValue), outcome: "dry", run: nil)
        }
        interrupted = nil
        guard await connection.isOpen else { throw PostgresError(.connectionLost, "the connection was lost") }
    }
}
