import Testing

@testable import GallraDaemon

@Suite("The main loop's events: waited for, never polled")
struct DaemonEventsTests {
    @Test func eventsArriveInOrderAndAtOnce() async throws {
        let events = DaemonEvents()
        let inbox = DaemonInbox(events)
        events.post(.reload)
        events.post(.policiesChanged)
        let far = ContinuousClock.now + .seconds(60)
        #expect(try await inbox.next(until: far) == .reload)
        #expect(try await inbox.next(until: far) == .policiesChanged)

        // Posted while the inbox waits: it wakes at once, not at the next poll.
        let trigger = DaemonEvent.trigger(TriggerRequest(policies: ["stale-customers"]), source: "notify")
        let poster = Task {
            try await Task.sleep(for: .milliseconds(100))
            events.post(trigger)
            return ContinuousClock.now
        }
        let received = try await inbox.next(until: far)
        let woke = ContinuousClock.now
        #expect(received == trigger)
        #expect(woke - (try await poster.value) < .milliseconds(50))
    }

    @Test func nothingUntilTheDeadlineIsNil() async throws {
        let inbox = DaemonInbox(DaemonEvents())
        let start = ContinuousClock.now
        #expect(try await inbox.next(until: start + .milliseconds(200)) == nil)
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(200) && waited < .seconds(2))
    }

    /// An event ends a wait before its alarm: that alarm, posted later, must not cut the next wait short.
    @Test func anEarlierWaitsAlarmIsIgnored() async throws {
        let events = DaemonEvents()
        let inbox = DaemonInbox(events)
        events.post(.reload)
        #expect(try await inbox.next(until: .now + .seconds(60)) == .reload)
        events.post(.alarm(1))  // the first wait's alarm, fired just as the event ended that wait
        events.post(.policiesChanged)
        #expect(try await inbox.next(until: .now + .seconds(60)) == .policiesChanged)
    }

    @Test func cancellingTheWaitingTaskEndsTheWait() async throws {
        let events = DaemonEvents()
        let waiting = Task {
            let inbox = DaemonInbox(events)
            return try await inbox.next(until: .now + .seconds(60))
        }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        waiting.cancel()
        let outcome = await waiting.result
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(throws: CancellationError.self) { try outcome.get() }
    }

    @Test func aWaitingLoopIsFreshHoweverLongItWaits() async throws {
        let heartbeat = Heartbeat()
        heartbeat.setWaiting(true)
        try await Task.sleep(for: .milliseconds(60))
        #expect(heartbeat.isFresh(within: .milliseconds(20)))
        heartbeat.setWaiting(false)
        #expect(heartbeat.isFresh(within: .milliseconds(20)))
        try await Task.sleep(for: .milliseconds(60))
        #expect(!heartbeat.isFresh(within: .milliseconds(20)))
        heartbeat.beat()
        #expect(heartbeat.isFresh(within: .milliseconds(20)))
    }
}
