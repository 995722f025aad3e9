// Waiting for the next event, or until a time, without polling.
import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import GallraSystemd
import Logging

extension DaemonLoop {
    /// The next event, or nil once `deadline` has come. The loop sleeps until one of the two: the deadline is an
    /// alarm posted among the events, so nothing polls. Graceful shutdown cancels the loop's task, which ends the
    /// wait at once (`CancellationError`).
    func nextEvent(until deadline: ContinuousClock.Instant) async throws -> DaemonEvent? {
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
    func sleepHandlingReload(_ duration: Duration) async throws {
        let deadline = ContinuousClock.now + duration
        while let event = try await nextEvent(until: deadline) {
            switch event {
            case .reload: try await reload(connection: nil)
            case .trigger: logger.notice("trigger ignored: this gallra is not running the policies right now")
            case .policiesChanged, .listenerLost, .alarm: break
            }
        }
    }
}
