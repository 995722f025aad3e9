import Synchronization

/// Something that happened outside the main loop, for the loop to act on.
enum DaemonEvent: Sendable, Hashable {
    /// SIGHUP: re-read the configuration and the policies.
    case reload
    /// SIGUSR1 (`signal`) or `gallra trigger` (`notify`): run now.
    case trigger(TriggerRequest, source: String)
    /// A policy was stored (`gallra_policy`).
    case policiesChanged
    /// The LISTEN connection failed: the database is probably gone.
    case listenerLost(String)
    /// The time a wait of the loop's was set for has come: the next fire time, the end of a backoff. The number
    /// tells the waits apart, so that the alarm of a wait an earlier event ended is ignored.
    case alarm(UInt64)
}

/// The main loop's events in the order they happened, as an `AsyncStream` the loop awaits: the signal task, the
/// listener and the loop's own alarms post to it, and the loop wakes only when there is something to do.
struct DaemonEvents: Sendable {
    let stream: AsyncStream<DaemonEvent>
    private let continuation: AsyncStream<DaemonEvent>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    func post(_ event: DaemonEvent) {
        continuation.yield(event)
    }
}

/// The main loop's last sign of life, which the watchdog task checks before each ping.
///
/// The loop beats between steps of its work (and a run between batches); while it waits for its next event it is
/// idle rather than stalled, so a wait of any length keeps it fresh.
final class Heartbeat: Sendable {
    private struct State {
        var last = ContinuousClock.now
        var waiting = false
    }

    private let state = Mutex(State())

    func beat() {
        state.withLock { $0.last = .now }
    }

    /// Marks the start (true) or the end (false) of a wait for the next event; each is a beat too.
    func setWaiting(_ waiting: Bool) {
        state.withLock { $0 = State(last: .now, waiting: waiting) }
    }

    func isFresh(within limit: Duration) -> Bool {
        state.withLock { $0.waiting || ContinuousClock.now - $0.last <= limit }
    }
}
