// Leading: listening for triggers and policy changes, and running what the schedule makes due.
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
    func lead(on connection: PostgresConnection) async throws {
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
    func schedule(on connection: PostgresConnection) async throws {
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
    func loadPolicies(on connection: PostgresConnection) async throws {
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
}
