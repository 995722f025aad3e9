/// Something that happened outside the main loop, for the loop to act on.
enum DaemonEvent: Sendable, Hashable {
    /// SIGHUP: re-read the configuration and the policies.
    case reload
    /// SIGUSR1 (`signal`) or `gallra trigger` (`notify`): run now.
    case trigger(TriggerRequest, source: String)
    /// A policy was stored (`gallra_policy`).
    case policiesChanged
    /// An erasure request was recorded (`gallra_erasure`): process the due requests now.
    case erasureRequested
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

/// The receiving end of ``DaemonEvents``, owned by the main loop: waits for the next event or a deadline, whichever
/// comes first, without polling.
final class DaemonInbox {
    private let events: DaemonEvents
    private var iterator: AsyncStream<DaemonEvent>.AsyncIterator
    /// How many waits have set an alarm: the number of the latest.
    private var alarmsSet: UInt64 = 0

    init(_ events: DaemonEvents) {
        self.events = events
        self.iterator = events.stream.makeAsyncIterator()
    }

    /// The next event, or nil once `deadline` has come: the deadline is an alarm posted among the events, so one
    /// `await` waits for both. A cancelled task (graceful shutdown) ends the wait at once with `CancellationError`.
    func next(until deadline: ContinuousClock.Instant) async throws -> DaemonEvent? {
        try Task.checkCancellation()
        alarmsSet += 1
        let alarm = alarmsSet
        let events = self.events
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await Task.sleep(until: deadline)
                events.post(.alarm(alarm))
            }
            defer { group.cancelAll() }
            while let event = await iterator.next() {
                if case .alarm(let number) = event {
                    if number == alarm { return nil }
                    continue  // an earlier wait's, which an event ended first
                }
                return event
            }
            throw CancellationError()  // the stream ends when the waiting task is cancelled
        }
    }
}
