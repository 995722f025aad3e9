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

    /// Waits `duration` while not leading: reloads are handled, and a trigger is kept until this gallra leads
    /// (nothing runs here now).
    func sleepHandlingReload(_ duration: Duration) async throws {
        let deadline = ContinuousClock.now + duration
        while let event = try await nextEvent(until: deadline) {
            switch event {
            case .reload: try await reload(connection: nil)
            case .trigger(let request, let source): keepTrigger(request, source: source)
            case .policiesChanged, .erasureRequested, .listenerLost, .alarm: break
            }
        }
    }

    /// A trigger that came while this gallra does not run the policies (a standby, or the database unreachable): it
    /// runs once this gallra leads. Several such triggers run once, over the policies any of them named (every
    /// policy if one named none).
    func keepTrigger(_ request: TriggerRequest, source: String) {
        let merged: TriggerRequest
        if let kept = pendingTrigger {
            merged =
                kept.request.policies.isEmpty || request.policies.isEmpty
                ? TriggerRequest()
                : TriggerRequest(
                    policies: kept.request.policies + request.policies.filter { !kept.request.policies.contains($0) })
        } else {
            merged = request
        }
        pendingTrigger = (merged, pendingTrigger?.source ?? source)
        let names = merged.policies.isEmpty ? "every policy" : merged.policies.joined(separator: ", ")
        logger.notice(
            "trigger (\(source)) kept: this gallra is a standby or not connected to the database; it runs \(names) once it leads"
        )
    }
}
