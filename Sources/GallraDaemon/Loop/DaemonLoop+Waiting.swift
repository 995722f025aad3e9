// Waiting for the next event, or until a time, without polling.
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
    /// The next event, or nil once `deadline` has come (``DaemonInbox/next(until:)``); idle, not stalled, meanwhile.
    func nextEvent(until deadline: ContinuousClock.Instant) async throws -> DaemonEvent? {
        heartbeat.setWaiting(true)
        defer { heartbeat.setWaiting(false) }
        return try await inbox.next(until: deadline)
    }

    /// Waits `duration` while not leading: reloads are handled, triggers are ignored (nothing runs here now).
    func sleepHandlingReload(_ duration: Duration) async throws {
        let deadline = ContinuousClock.now + duration
        while let event = try await nextEvent(until: deadline) {
            switch event {
            case .reload: try await reload(connection: nil)
            case .trigger: logger.notice("trigger ignored: this gallra is not running the policies right now")
            case .policiesChanged, .erasureRequested, .listenerLost, .alarm: break
            }
        }
    }
}
