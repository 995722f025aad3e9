import Foundation
import GallraDaemon
import GallraPolicy
import Testing

/// `2026-11-20T03:00:00Z` as a date.
private func at(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    return formatter.date(from: text)!
}

private func schedule(_ text: String) -> Schedule {
    try! Schedule(parsing: text)
}

@Suite("Scheduler")
struct SchedulerTests {
    @Test("a new policy waits for its first fire time after it was scheduled")
    func newPolicyWaits() {
        let policy = ScheduledPolicy(
            name: "inactive-customers", schedule: schedule("daily at 03:00"), mode: .live,
            scheduledSince: at("2026-11-20T14:00:00Z"))
        let scheduler = Scheduler([policy])
        #expect(scheduler.due(at: at("2026-11-20T14:00:01Z")).isEmpty)
        #expect(scheduler.due(at: at("2026-11-21T02:59:59Z")).isEmpty)
        #expect(scheduler.due(at: at("2026-11-21T03:00:00Z")).map(\.name) == ["inactive-customers"])
    }

    @Test("after downtime a missed schedule runs once, not once per missed slot")
    func missedSlotRunsOnce() {
        // Last ran Monday 03:00; the daemon was down until Thursday 10:00: three slots missed.
        var scheduler = Scheduler([
            ScheduledPolicy(
                name: "inactive-customers", schedule: schedule("daily at 03:00"), mode: .live,
                scheduledSince: at("2026-11-01T00:00:00Z"), lastStarted: at("2026-11-16T03:00:00Z"))
        ])
        let restart = at("2026-11-19T10:00:00Z")
        #expect(scheduler.due(at: restart).map(\.name) == ["inactive-customers"])
        scheduler.started(["inactive-customers"], at: restart)
        #expect(scheduler.due(at: restart).isEmpty)
        #expect(scheduler.due(at: at("2026-11-19T23:00:00Z")).isEmpty)
        #expect(scheduler.due(at: at("2026-11-20T03:00:00Z")).map(\.name) == ["inactive-customers"])
    }

    @Test("the next fire time is the earliest of all policies, and the idle status names it")
    func nextFire() {
        let scheduler = Scheduler([
            ScheduledPolicy(
                name: "old-orders", schedule: schedule("daily at 04:30"), mode: .live,
                scheduledSince: at("2026-11-01T00:00:00Z")),
            ScheduledPolicy(
                name: "inactive-customers", schedule: schedule("daily at 03:00"), mode: .live,
                scheduledSince: at("2026-11-01T00:00:00Z")),
            ScheduledPolicy(
                name: "sessions", schedule: schedule("every 6h"), mode: .live,
                scheduledSince: at("2026-11-01T00:00:00Z")),
        ])
        let now = at("2026-11-20T01:00:00Z")
        #expect(scheduler.next(after: now)?.policy == "inactive-customers")
        #expect(scheduler.next(after: now)?.at == at("2026-11-20T03:00:00Z"))
        #expect(scheduler.idleStatus(now: now) == "idle; next: inactive-customers at 03:00 UTC")
        #expect(scheduler.next(after: at("2026-11-20T03:00:00Z"))?.policy == "old-orders")
        #expect(scheduler.next(after: at("2026-11-20T05:00:00Z"))?.policy == "sessions")
        #expect(Scheduler([]).idleStatus(now: now) == "idle; no active or draft policy to schedule")
    }

    @Test("a draft policy is due on its schedule like an active one, as a dry run")
    func draftRunsDry() {
        let scheduler = Scheduler([
            ScheduledPolicy(
                name: "trial", schedule: schedule("hourly"), mode: .dry, scheduledSince: at("2026-11-20T00:10:00Z")),
            ScheduledPolicy(
                name: "live-one", schedule: schedule("hourly"), mode: .live,
                scheduledSince: at("2026-11-20T00:10:00Z")),
        ])
        let due = scheduler.due(at: at("2026-11-20T01:00:00Z"))
        #expect(due.map(\.name) == ["live-one", "trial"])
        #expect(due.first { $0.name == "trial" }?.mode == .dry)
        #expect(due.first { $0.name == "live-one" }?.mode == .live)
    }

    @Test("fire times passing during a long run make the policy due once afterwards, never beside it")
    func noOverlap() {
        var scheduler = Scheduler([
            ScheduledPolicy(
                name: "sessions", schedule: schedule("every 10m"), mode: .live,
                scheduledSince: at("2026-11-20T00:00:00Z"))
        ])
        let start = at("2026-11-20T03:00:00Z")
        #expect(scheduler.due(at: start).map(\.name) == ["sessions"])
        scheduler.started(["sessions"], at: start)
        // While it runs (the loop is busy) nothing new is due at the run's own start instant...
        #expect(scheduler.due(at: start).isEmpty)
        // ...and when it ends at 03:35, three slots (03:10, 03:20, 03:30) have passed: due once.
        let end = at("2026-11-20T03:35:00Z")
        #expect(scheduler.due(at: end).map(\.name) == ["sessions"])
        scheduler.started(["sessions"], at: end)
        #expect(scheduler.due(at: end).isEmpty)
        #expect(scheduler.due(at: at("2026-11-20T03:39:59Z")).isEmpty)
        #expect(scheduler.due(at: at("2026-11-20T03:40:00Z")).map(\.name) == ["sessions"])
    }
}

@Suite("Backoff")
struct BackoffTests {
    @Test("doubles from the first delay up to the maximum, plus at most 25 % jitter")
    func doubling() {
        let backoff = Backoff(initial: .seconds(1), maximum: .seconds(60))
        #expect(backoff.delay(afterAttempt: 1, jitter: 0) == .seconds(1))
        #expect(backoff.delay(afterAttempt: 2, jitter: 0) == .seconds(2))
        #expect(backoff.delay(afterAttempt: 4, jitter: 0) == .seconds(8))
        #expect(backoff.delay(afterAttempt: 7, jitter: 0) == .seconds(60))
        #expect(backoff.delay(afterAttempt: 1000, jitter: 0) == .seconds(60))
        #expect(backoff.delay(afterAttempt: 7, jitter: 1) == .seconds(75))
        for attempt in 1...10 {
            let delay = backoff.delay(afterAttempt: attempt)
            #expect(delay >= .seconds(1) && delay <= .seconds(75))
        }
    }
}

@Suite("Trigger requests")
struct TriggerRequestTests {
    @Test("the payload names the policies; an empty or hand-typed payload runs everything")
    func payload() {
        let request = TriggerRequest(policies: ["inactive-customers"])
        #expect(request.payload == #"{"policies":["inactive-customers"]}"#)
        #expect(TriggerRequest(payload: request.payload) == request)
        #expect(TriggerRequest(payload: "") == TriggerRequest())
        #expect(TriggerRequest(payload: "now please") == TriggerRequest())
    }
}
