import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import GallraSystemd
import Logging

/// The daemon's main loop: one task, so runs are strictly sequential. Owned by that task alone.
final class DaemonLoop {
    /// Thrown to drop the session and connect again (a reload changed the database settings).
    struct Reconnect: Error {}

    private var configuration: DaemonConfiguration
    private let reloadConfiguration: @Sendable () async throws -> DaemonConfiguration
    private var logger: Logger
    private let notifier: SystemdNotifier
    private let events: DaemonEvents
    /// The loop's one iterator over `events`.
    private var pendingEvents: AsyncStream<DaemonEvent>.AsyncIterator
    /// How many waits have set an alarm: the number of the latest.
    private var alarmsSet: UInt64 = 0
    private let heartbeat: Heartbeat

    private var readySent = false
    private var status = ""
    /// Since when the database is unreachable (one warning when it goes down, one notice when it is back).
    private var unreachableSince: Date?
    private var needsReconnect = false
    private var leading = false
    private var policies: [String: RunPolicy] = [:]
    private var scheduler = Scheduler([])
    /// Work a lost connection interrupted: run again once connected and leading.
    private var interrupted: (names: [String], trigger: String)?

    init(
        configuration: DaemonConfiguration,
        reloadConfiguration: @escaping @Sendable () async throws -> DaemonConfiguration,
        logger: Logger, notifier: SystemdNotifier, events: DaemonEvents, heartbeat: Heartbeat
    ) {
        self.configuration = configuration
        self.reloadConfiguration = reloadConfiguration
        self.logger = logger
        self.notifier = notifier
        self.events = events
        self.pendingEvents = events.stream.makeAsyncIterator()
        self.heartbeat = heartbeat
    }

    /// Runs until cancelled (graceful shutdown).
    func run() async {
        var failures = 0
        while !Task.isCancelled {
            var session: PostgresConnection?
            do {
                setStatus("connecting to the database")
                let connection = try await connect()
                session = connection
                try await Schema.migrate(on: connection, logger: logger)
                try await waitForLeadership(on: connection)
                try await lead(on: connection)
            } catch {
                leading = false
                if let session { await session.close() }
                if Task.isCancelled || error is CancellationError { break }
                if error is Reconnect {
                    needsReconnect = false
                    continue
                }
                if (error as? PostgresError)?.isServerUnavailable == true {
                    databaseDown(error)
                    continue
                }
                failures += 1
                let delay = configuration.reconnect.delay(afterAttempt: failures)
                logger.error("\(error); starting over in \(Self.seconds(delay))")
                setStatus("error: \(error); starting over")
                sendReadyOnce()
                do { try await sleepHandlingReload(delay) } catch { break }
            }
        }
        leading = false
    }

    // MARK: - Connecting

    /// Connects, retrying with backoff and jitter while the database is down. Before `READY=1` each retry extends
    /// the start-up timeout, so that a database still booting does not get gallra killed.
    private func connect() async throws -> PostgresConnection {
        var attempt = 0
        while true {
            heartbeat.beat()
            try Task.checkCancellation()
            do {
                let connection = try await PostgresConnection.connect(
                    configuration.database, password: configuration.password, logger: logger)
                if let since = unreachableSince {
                    unreachableSince = nil
                    logger.notice(
                        "database reachable again (unreachable since \(Self.clock(since)))",
                        metadata: JournalEvent.databaseBack.metadata())
                }
                return connection
            } catch let error as PostgresError where error.code == .cancelled {
                throw CancellationError()
            } catch {
                databaseDown(error)
                attempt += 1
                let delay = configuration.reconnect.delay(afterAttempt: attempt)
                if !readySent { try? notifier.extendTimeout(delay + .seconds(40)) }
                try await sleepHandlingReload(delay)
                if needsReconnect { needsReconnect = false }
            }
        }
    }

    private func databaseDown(_ error: any Error) {
        leading = false
        if unreachableSince == nil {
            let now = Date()
            unreachableSince = now
            logger.warning(
                "database unreachable: \(error); retrying with backoff until it is back",
                metadata: JournalEvent.databaseUnreachable.metadata())
        }
        setStatus("database unreachable since \(Self.clock(unreachableSince ?? Date())); retrying")
    }

    // MARK: - One runner per database

    /// Takes the runner lock, or waits as a standby (retrying every `standbyRetry`) until the other gallra is gone.
    private func waitForLeadership(on connection: PostgresConnection) async throws {
        var standby = false
        while true {
            heartbeat.beat()
            if try await Engine.tryAcquireRunnerLock(on: connection) {
                leading = true
                let abandoned = try await Engine.closeAbandonedRuns(on: connection)
                if abandoned > 0 {
                    logger.warning(
                        "\(abandoned) earlier run(s) had stopped without finishing; marked interrupted",
                        metadata: ["runs": "\(abandoned)"])
                }
                logger.notice(
                    standby
                        ? "taking over: the other gallra is gone; this one now runs the policies on this database"
                        : "leader: this gallra runs the policies on this database",
                    metadata: JournalEvent.leader.metadata())
                return
            }
            if !standby {
                standby = true
                logger.notice(
                    "standby: another gallra runs policies on this database; this one takes over when it stops",
                    metadata: JournalEvent.standby.metadata())
            }
            setStatus("standby: another gallra runs policies on this database")
            sendReadyOnce()
            try await sleepHandlingReload(configuration.standbyRetry)
            if needsReconnect { throw Reconnect() }
        }
    }

    // MARK: - Leading

    private func lead(on connection: PostgresConnection) async throws {
        // Listening before READY=1, so that a trigger sent once the service is up is not lost.
        let listener = try await PostgresConnection.connect(
            configuration.database, password: configuration.password, logger: logger)
        do {
            try await listener.listen(NotificationChannel.trigger)
            try await listener.listen(NotificationChannel.policy)
        } catch {
            await listener.close()
            throw error
        }
        let events = self.events
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await Self.listen(on: listener, events: events) }
            do {
                try await schedule(on: connection)
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
    }

    /// Hands notifications to the main loop until cancelled or the connection fails.
    static func listen(on listener: PostgresConnection, events: DaemonEvents) async {
        do {
            while true {
                guard let notification = try await listener.waitForNotification(timeout: nil) else { continue }
                switch notification.channel {
                case NotificationChannel.trigger:
                    events.post(.trigger(TriggerRequest(payload: notification.payload), source: "notify"))
                case NotificationChannel.policy:
                    events.post(.policiesChanged)
                default:
                    break
                }
            }
        } catch {
            if !Task.isCancelled { events.post(.listenerLost("\(error)")) }
        }
        await listener.close()
    }

    /// The leader's loop: run what is due, then wait for the next fire time or an event.
    private func schedule(on connection: PostgresConnection) async throws {
        try await loadPolicies(on: connection)
        setStatus(scheduler.idleStatus(now: Date()))
        sendReadyOnce()
        if let work = interrupted {
            logger.notice("resuming the run the lost connection interrupted: \(work.names.joined(separator: ", "))")
            try await execute(work.names, trigger: work.trigger, on: connection)
        }
        while true {
            if needsReconnect { throw Reconnect() }
            let now = Date()
            let due = scheduler.due(at: now)
            if !due.isEmpty {
                try await execute(due.map(\.name), trigger: "schedule", on: connection)
                continue
            }
            setStatus(scheduler.idleStatus(now: now))
            // Wake at the next fire time, and at least every minute (the clock may be set meanwhile).
            let wait = min(scheduler.next(after: now).map { $0.at.timeIntervalSince(now) + 0.05 } ?? 60, 60)
            let wakeAt = ContinuousClock.now + .milliseconds(Int64(max(wait, 0) * 1000))
            guard let event = try await nextEvent(until: wakeAt) else { continue }
            switch event {
            case .reload:
                try await reload(connection: connection)
            case .policiesChanged:
                logger.info("a policy was stored; reloading the policies")
                try await loadPolicies(on: connection)
            case .trigger(let request, let source):
                try await runTriggered(request, source: source, on: connection)
            case .listenerLost(let reason):
                throw PostgresError(.connectionLost, "the LISTEN connection failed: \(reason)")
            case .alarm:
                break  // nextEvent hands out none
            }
        }
    }

    /// Loads and validates the stored policies (an invalid one is logged and left out; the others run) and
    /// builds the scheduler from them and their schedule state.
    private func loadPolicies(on connection: PostgresConnection) async throws {
        let runnable = try await RunnablePolicies.load(on: connection, names: [], includeDrafts: true)
        for invalid in runnable.invalid {
            logger.error(
                "policy \(invalid.name) is invalid and does not run (the others do): \(invalid.reason)",
                metadata: JournalEvent.policyInvalid.metadata(["policy": "\(invalid.name)"]))
        }
        let names = runnable.policies.map(\.resolved.name.rawValue)
        let states = try await ScheduleStateStore(connection: connection).load(policies: names, now: Date())
        var entries: [ScheduledPolicy] = []
        var loaded: [String: RunPolicy] = [:]
        for policy in runnable.policies {
            let name = policy.resolved.name.rawValue
            let schedule: Schedule
            if let text = policy.resolved.policy.schedule {
                do {
                    schedule = try Schedule(parsing: text)
                } catch {
                    logger.error(
                        "policy \(name) is invalid and does not run (the others do): schedule: \(error)",
                        metadata: JournalEvent.policyInvalid.metadata([
                            "policy": "\(name)", "policy.version": "\(policy.version)",
                        ]))
                    continue
                }
            } else {
                schedule = configuration.defaultSchedule
            }
            loaded[name] = policy
            entries.append(
                ScheduledPolicy(
                    name: name, schedule: schedule, mode: policy.state == .active ? .live : .dry,
                    scheduledSince: states[name]?.scheduledSince ?? Date(), lastStarted: states[name]?.lastStartedAt))
        }
        policies = loaded
        scheduler = Scheduler(entries)
        logger.info(
            "\(entries.count) policies scheduled",
            metadata: ["policies": "\(entries.map { "\($0.name) (\($0.mode.rawValue), \($0.schedule))" })"])
    }

    private func runTriggered(_ request: TriggerRequest, source: String, on connection: PostgresConnection)
        async throws
    {
        try await loadPolicies(on: connection)
        let known = Set(policies.keys)
        for name in request.policies where !known.contains(name) {
            logger.warning(
                "trigger: no active or draft policy \(name) can run; ignored", metadata: ["policy": "\(name)"])
        }
        let names = request.policies.isEmpty ? known.sorted() : request.policies.filter(known.contains)
        logger.notice(
            "triggered (\(source)): running \(names.isEmpty ? "nothing" : names.joined(separator: ", ")) now")
        try await execute(names, trigger: source, on: connection)
    }

    /// Runs `names` now: the active ones live, the drafts as a dry run, each recorded in the schedule state.
    private func execute(_ names: [String], trigger: String, on connection: PostgresConnection) async throws {
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
            // The throttle reads pg_stat_replication on the run's own connection, between batches.
            let throttle =
                configuration.replicaLag.isEnabled
                ? ReplicaThrottle(
                    limits: configuration.replicaLag, source: PostgresReplicaLagSource(connection: connection))
                : nil
            let (database, password, logger) = (configuration.database, configuration.password, self.logger)
            let options = RunOptions(
                mode: .live, trigger: trigger, statementTimeout: configuration.statementTimeout,
                lockTimeout: configuration.lockTimeout, gallraVersion: configuration.gallraVersion,
                throttle: throttle,
                // A policy's parallel batches: connections beyond the run's own, closed when the policy is done.
                connect: { try await PostgresConnection.connect(database, password: password, logger: logger) })
            let report = try await Engine(connection: connection, auditKey: configuration.auditKey, logger: logger)
                .run(live, options: options) { progress in
                    // Also called at every poll while batches are paused for replica lag, so that a long
                    // pause keeps the watchdog fed.
                    heartbeat.beat()
                    let done = "\(progress.subjectsDone)/\(progress.subjectsTotal) subjects"
                    try? notifier.status(
                        progress.pausedBy.map { "purging \(progress.policy): \(done); paused: \($0)" }
                            ?? "purging \(progress.policy): \(done)")
                }
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

    // MARK: - Reloading

    /// SIGHUP: `RELOADING=1`, re-read the configuration (an invalid one is logged and the old one kept) and, when
    /// leading, the policies; then `READY=1`.
    private func reload(connection: PostgresConnection?) async throws {
        if readySent { try? notifier.reloading(status: "reloading the configuration and policies") }
        logger.notice("reloading the configuration and policies (SIGHUP)", metadata: JournalEvent.reload.metadata())
        do {
            let new = try await reloadConfiguration()
            if new.connectsDifferently(from: configuration) { needsReconnect = true }
            configuration = new
            logger.logLevel = new.logLevel
        } catch {
            logger.error(
                "the new configuration is invalid, the previous one stays in force: \(error)",
                metadata: JournalEvent.reload.metadata())
        }
        do {
            if let connection, leading { try await loadPolicies(on: connection) }
        } catch {
            if readySent { try? notifier.ready(status: status) }
            throw error
        }
        if readySent { try? notifier.ready(status: leading ? scheduler.idleStatus(now: Date()) : status) }
    }

    // MARK: - Waiting

    /// The next event, or nil once `deadline` has come. The loop sleeps until one of the two: the deadline is an
    /// alarm posted among the events, so nothing polls. Graceful shutdown cancels the loop's task, which ends the
    /// wait at once (`CancellationError`).
    private func nextEvent(until deadline: ContinuousClock.Instant) async throws -> DaemonEvent? {
        try Task.checkCancellation()
        alarmsSet += 1
        let alarm = alarmsSet
        let events = self.events
        heartbeat.setWaiting(true)
        defer { heartbeat.setWaiting(false) }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await Task.sleep(until: deadline)
                events.post(.alarm(alarm))
            }
            defer { group.cancelAll() }
            while let event = await pendingEvents.next() {
                if case .alarm(let number) = event {
                    if number == alarm { return nil }
                    continue  // an earlier wait's, which an event ended first
                }
                return event
            }
            throw CancellationError()  // the stream ends when the waiting task is cancelled
        }
    }

    /// Waits `duration` while not leading: reloads are handled, triggers are ignored (nothing runs here now).
    private func sleepHandlingReload(_ duration: Duration) async throws {
        let deadline = ContinuousClock.now + duration
        while let event = try await nextEvent(until: deadline) {
            switch event {
            case .reload: try await reload(connection: nil)
            case .trigger: logger.notice("trigger ignored: this gallra is not running the policies right now")
            case .policiesChanged, .listenerLost, .alarm: break
            }
        }
    }

    // MARK: - Status

    private func setStatus(_ text: String) {
        guard text != status else { return }
        status = text
        try? notifier.status(text)
    }

    private func sendReadyOnce() {
        guard !readySent else { return }
        readySent = true
        try? notifier.ready(status: status)
    }

    /// `02:13:05` (UTC).
    static func clock(_ date: Date) -> String {
        String(PostgresTimestamp(date).secondsText.dropFirst(11))
    }

    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return String(format: "%.1f s", Double(seconds) + Double(attoseconds) / 1e18)
    }
}
