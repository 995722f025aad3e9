// Leading: listening for triggers, policy changes and erasure requests, and running what the schedule makes due.
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
            configuration.database, password: configuration.password,
            idleInTransactionTimeout: configuration.idleInTransactionTimeout, logger: logger)
        do {
            try await listener.listen(NotificationChannel.trigger)
            try await listener.listen(NotificationChannel.policy)
            try await listener.listen(NotificationChannel.erasure)
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
                case NotificationChannel.erasure:
                    events.post(.erasureRequested)
                default:
                    break
                }
            }
        } catch {
            if !Task.isCancelled { events.post(.listenerLost("\(error)")) }
        }
        await listener.close()
    }

    /// The leader's loop: run what is due and process the due erasure requests, then wait for the next fire time,
    /// the next request check or an event. One thing at a time: a request recorded during a run waits for its end.
    func schedule(on connection: PostgresConnection) async throws {
        try await loadPolicies(on: connection)
        setStatus(scheduler.idleStatus(now: Date()))
        sendReadyOnce()
        if let work = interrupted {
            logger.notice("resuming the run the lost connection interrupted: \(work.names.joined(separator: ", "))")
            try await execute(work.names, trigger: work.trigger, on: connection)
        }
        if let kept = pendingTrigger {
            pendingTrigger = nil
            logger.notice("running the trigger (\(kept.source)) kept while this gallra was not leading")
            try await runTriggered(kept.request, source: kept.source, on: connection)
        }
        // Requests recorded while no gallra was leading have had no listener: look at once.
        requestsCheckAt = .now
        var recheckAt = ContinuousClock.now
        while true {
            if needsReconnect { throw Reconnect() }
            let now = Date()
            let due = scheduler.due(at: now)
            if heldOff != nil || ((!due.isEmpty || ContinuousClock.now >= requestsCheckAt) && recheckAt <= .now) {
                // While a restore is unresolved, live work waits: looked at again every ledgerRecheck and on SIGHUP.
                if try await holdsOff(on: connection) {
                    recheckAt = .now + configuration.ledgerRecheck
                    guard let event = try await nextEvent(until: recheckAt) else { continue }
                    switch event {
                    case .reload:
                        try await reload(connection: connection)
                        recheckAt = .now
                    case .policiesChanged:
                        try await loadPolicies(on: connection)
                    case .trigger(_, let source):
                        logger.warning(
                            "trigger (\(source)) ignored: live runs wait until the restore is resolved (gallra ledger replay or accept)"
                        )
                    case .erasureRequested, .alarm:
                        break
                    case .listenerLost(let reason):
                        throw PostgresError(.connectionLost, "the LISTEN connection failed: \(reason)")
                    }
                    continue
                }
                recheckAt = .now
            }
            if !due.isEmpty {
                try await execute(due.map(\.name), trigger: "schedule", on: connection)
                continue
            }
            if ContinuousClock.now >= requestsCheckAt {
                try await serveErasureRequests(on: connection)
                continue
            }
            setStatus(scheduler.idleStatus(now: now))
            // Wake at the next fire time or request check, and at least every minute (the clock may be set).
            let wait = min(scheduler.next(after: now).map { $0.at.timeIntervalSince(now) + 0.05 } ?? 60, 60)
            let wakeAt = min(ContinuousClock.now + .milliseconds(Int64(max(wait, 0) * 1000)), requestsCheckAt)
            guard let event = try await nextEvent(until: wakeAt) else { continue }
            switch event {
            case .reload:
                try await reload(connection: connection)
            case .policiesChanged:
                logger.info("a policy was stored; reloading the policies")
                try await loadPolicies(on: connection)
            case .trigger(let request, let source):
                try await runTriggered(request, source: source, on: connection)
            case .erasureRequested:
                requestsCheckAt = .now
            case .listenerLost(let reason):
                throw PostgresError(.connectionLost, "the LISTEN connection failed: \(reason)")
            case .alarm:
                break  // nextEvent hands out none
            }
        }
    }

    /// Loads and validates the stored policies (an invalid one is logged and left out; the others run) and
    /// builds the scheduler from them and their schedule state. On-request policies are left to the request sweep:
    /// run on a schedule, they would erase subjects without deciding their requests.
    func loadPolicies(on connection: PostgresConnection) async throws {
        let runnable = try await RunnablePolicies.load(on: connection, names: [], includeDrafts: true)
        for invalid in runnable.invalid {
            logger.error(
                "policy \(invalid.name) is invalid and does not run (the others do): \(invalid.reason)",
                metadata: JournalEvent.policyInvalid.metadata(["policy": "\(invalid.name)"]))
        }
        let onRequest = runnable.policies.filter { $0.resolved.policy.rule == .onRequest }
        onRequestPolicies = Set(onRequest.filter { $0.state == .active }.map(\.resolved.name.rawValue))
        let scheduled = runnable.policies.filter { $0.resolved.policy.rule != .onRequest }
        let names = scheduled.map(\.resolved.name.rawValue)
        let states = try await ScheduleStateStore(connection: connection).load(policies: names, now: Date())
        var entries: [ScheduledPolicy] = []
        var loaded: [String: RunPolicy] = [:]
        for policy in scheduled {
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
            "\(entries.count) policies scheduled, \(onRequestPolicies.count) acting on erasure requests",
            metadata: [
                "policies": "\(entries.map { "\($0.name) (\($0.mode.rawValue), \($0.schedule))" })",
                "policies.on_request": "\(onRequestPolicies.sorted())",
            ])
    }
}
