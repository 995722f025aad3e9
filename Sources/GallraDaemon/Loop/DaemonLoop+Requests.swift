// Erasure requests: processed as soon as they are due, on a notification or at the sweep.
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
    /// Processes the due erasure requests, if any, and sets when to look next.
    ///
    /// First one cheap read of the queue: when no request is due (none pending, an undo window still open, a
    /// request the shop's locks held back still in its backoff) nothing else happens. Otherwise the engine claims
    /// each due request, refuses it or erases its subject under its table's on-request policies, and decides it
    /// (one journal event each, through this service's logger); a request whose subject the shop holds stays
    /// pending with one more attempt. The next look is at the earliest undo window's end or retry, and at most
    /// `requests.sweep` away, which catches a notification the listener missed.
    func serveErasureRequests(on connection: PostgresConnection) async throws {
        heartbeat.beat()
        let (retry, sweep) = (configuration.requestRetry, configuration.requestSweep)
        var wait = try await ErasureQueue.untilNextAttempt(retry: retry, maximum: sweep, on: connection)
        if let due = wait, due <= .zero {
            do {
                try await processDueRequests(on: connection)
            } catch {
                // A lost connection or a stop goes up (reconnect, or stop); anything else fails these requests for
                // now, not the service: the scheduled runs go on, and the requests are tried again at the sweep.
                let open = await connection.isOpen
                if Task.isCancelled || error is CancellationError || !open
                    || (error as? PostgresError)?.isServerUnavailable == true
                {
                    throw error
                }
                logger.error("processing erasure requests failed: \(error); trying again in \(Self.seconds(sweep))")
                requestsCheckAt = .now + sweep
                return
            }
            wait = try await ErasureQueue.untilNextAttempt(retry: retry, maximum: sweep, on: connection)
        }
        // Still due right after processing: another gallra (`gallra erase`) holds the request; look again soon.
        let next = wait.map { $0 <= .zero ? retry : min($0 + .milliseconds(10), sweep) } ?? sweep
        requestsCheckAt = .now + next
        logger.debug("erasure requests: next look in \(Self.seconds(next))")
    }

    func processDueRequests(on connection: PostgresConnection) async throws {
        setStatus("erasing on request")
        let (notifier, heartbeat) = (self.notifier, self.heartbeat)
        let outcomes = try await Engine(connection: connection, auditKey: configuration.auditKey, logger: logger)
            .processErasureRequests(.due, options: liveOptions(trigger: "erase", on: connection)) { progress in
                heartbeat.beat()
                let left = progress.total - progress.position + 1
                try? notifier.status(
                    progress.run?.pausedBy.map { "erasing on request: \(left); paused: \($0)" }
                        ?? "erasing on request: \(left)")
            }
        await catchUpLedger(on: connection)
        if !outcomes.isEmpty {
            let counted = Dictionary(grouping: outcomes, by: \.status).mapValues(\.count)
            let summary = [ErasureOutcome.Status.done, .refused, .pending, .cancelled].compactMap { status in
                counted[status].map { "\($0) \(status.rawValue)" }
            }
            logger.debug("erasure requests processed: \(summary.joined(separator: ", "))")
        }
        guard await connection.isOpen else { throw PostgresError(.connectionLost, "the connection was lost") }
    }
}
