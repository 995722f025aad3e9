#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraPolicy
import GallraPostgres

/// One policy as the scheduler sees it.
public struct ScheduledPolicy: Sendable, Hashable {
    /// How a due policy runs: active policies live, drafts as logged dry runs.
    public enum Mode: String, Sendable, Hashable {
        case live
        case dry
    }

    public var name: String
    public var schedule: Schedule
    public var mode: Mode
    /// When the daemon first scheduled the policy: fire times before it are not due.
    public var scheduledSince: Date
    /// When a run of the policy last started, if ever.
    public var lastStarted: Date?

    public init(name: String, schedule: Schedule, mode: Mode, scheduledSince: Date, lastStarted: Date? = nil) {
        self.name = name
        self.schedule = schedule
        self.mode = mode
        self.scheduledSince = scheduledSince
        self.lastStarted = lastStarted
    }

    /// The instant the schedule counts from: the last start, else when it was first scheduled.
    var baseline: Date { lastStarted ?? scheduledSince }

    /// Whether a fire time has passed since ``baseline``: however many passed (downtime, a long run), the policy
    /// is due once.
    public func isDue(at now: Date) -> Bool {
        guard let previous = schedule.previousFire(atOrBefore: now) else { return false }
        return previous > baseline
    }
}

/// Which policies are due when. Pure: the clock is a parameter, state changes are values.
///
/// Runs are sequential: the service asks for what is due, runs it, records the start with ``started(_:at:)``,
/// and asks again. Since a start moves the policy's baseline to the start instant, fire times that pass while a
/// run goes on make the policy due once afterwards, never a second run beside the first.
public struct Scheduler: Sendable, Hashable {
    public private(set) var policies: [ScheduledPolicy]

    public init(_ policies: [ScheduledPolicy]) {
        self.policies = policies.sorted { $0.name < $1.name }
    }

    /// The policies due at `now`, in name order.
    public func due(at now: Date) -> [ScheduledPolicy] {
        policies.filter { $0.isDue(at: now) }
    }

    /// The next policy to fire strictly after `now` (earliest first, then by name), or nil when none will.
    public func next(after now: Date) -> (policy: String, at: Date)? {
        var best: (policy: String, at: Date)?
        for policy in policies {
            guard let fire = policy.schedule.nextFire(after: now) else { continue }
            if best == nil || fire < best!.at { best = (policy.name, fire) }
        }
        return best
    }

    /// Records that runs of `names` started at `instant`.
    public mutating func started(_ names: some Sequence<String>, at instant: Date) {
        let names = Set(names)
        for index in policies.indices where names.contains(policies[index].name) {
            policies[index].lastStarted = instant
        }
    }

    /// The status line while idle: "idle; next: inactive-customers at 03:00 UTC".
    public func idleStatus(now: Date) -> String {
        guard !policies.isEmpty else { return "idle; no active or draft policy to schedule" }
        guard let next = next(after: now) else { return "idle; no policy will fire again" }
        return "idle; next: \(next.policy) at \(Self.shortTime(next.at, now: now))"
    }

    /// `03:00 UTC` within a day, `2026-11-29 03:00 UTC` beyond.
    static func shortTime(_ date: Date, now: Date) -> String {
        let text = PostgresTimestamp(date).secondsText
        return (date.timeIntervalSince(now) < 86_400 ? text.dropFirst(11).prefix(5) : text.prefix(16)) + " UTC"
    }
}

/// Exponential backoff with jitter for reconnecting: `initial`, doubling per attempt up to `maximum`, each delay
/// plus up to 25 % random jitter (so that many gallra instances do not reconnect in step).
public struct Backoff: Sendable, Hashable {
    public var initial: Duration
    public var maximum: Duration

    public init(initial: Duration, maximum: Duration) {
        self.initial = max(initial, .milliseconds(1))
        self.maximum = max(maximum, self.initial)
    }

    /// The delay before attempt `attempt + 1` (attempt counts from 1), with `jitter` in 0...1.
    public func delay(afterAttempt attempt: Int, jitter: Double = Double.random(in: 0...1)) -> Duration {
        var base = initial
        for _ in 1..<max(1, min(attempt, 40)) where base < maximum { base *= 2 }
        base = min(base, maximum)
        return base + base * (0.25 * min(max(jitter, 0), 1))
    }
}
