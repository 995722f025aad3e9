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

/// The daemon's main loop: one task, so runs are strictly sequential. Owned by that task alone.
///
/// `run()` is the cycle connect → migrate → lead, started over after a failure. The steps live in a file each:
/// connecting with backoff (`+Connecting`), the runner lock and standby (`+Leadership`), leading on schedule
/// (`+Schedule`), runs (`+Runs`), erasure requests (`+Requests`), SIGHUP (`+Reload`), waiting for events (`+Waiting`) and systemd's status
/// line (`+Status`).
final class DaemonLoop {
    /// Thrown to drop the session and connect again (a reload changed the database settings).
    struct Reconnect: Error {}

    var configuration: DaemonConfiguration
    let reloadConfiguration: @Sendable () async throws -> DaemonConfiguration
    var logger: Logger
    let notifier: SystemdNotifier
    let events: DaemonEvents
    let inbox: DaemonInbox
    let heartbeat: Heartbeat
    /// The throttle of the live run in progress, for a SIGHUP that comes during it.
    let runningThrottle: RunningThrottle

    var readySent = false
    var status = ""
    /// Since when the database is unreachable (one warning when it goes down, one notice when it is back).
    var unreachableSince: Date?
    var needsReconnect = false
    var leading = false
    var policies: [String: RunPolicy] = [:]
    var scheduler = Scheduler([])
    /// The active on-request policies (`expires: on_request`): the request sweep serves them, never the scheduler.
    var onRequestPolicies: Set<String> = []
    /// When to look for due erasure requests next: now on a notification, else at the next undo window's end or
    /// retry, and at least every `requests.sweep`.
    var requestsCheckAt = ContinuousClock.now
    /// Work a lost connection interrupted: run again once connected and leading.
    var interrupted: (names: [String], trigger: String)?
    /// A trigger that came while this gallra was not leading: run once it leads.
    var pendingTrigger: (request: TriggerRequest, source: String)?
    /// The unresolved restore live work waits for (the database is older than its ledger); nil when none.
    var heldOff: LedgerFork?

    init(
        configuration: DaemonConfiguration,
        reloadConfiguration: @escaping @Sendable () async throws -> DaemonConfiguration,
        logger: Logger, notifier: SystemdNotifier, events: DaemonEvents, heartbeat: Heartbeat,
        runningThrottle: RunningThrottle = RunningThrottle()
    ) {
        self.configuration = configuration
        self.reloadConfiguration = reloadConfiguration
        self.logger = logger
        self.notifier = notifier
        self.events = events
        self.inbox = DaemonInbox(events)
        self.heartbeat = heartbeat
        self.runningThrottle = runningThrottle
    }

    /// Runs until cancelled (graceful shutdown).
    func run() async {
        var failures = 0
        while !Task.isCancelled {
            var session: PostgresConnection?
            do {
                setStatus("connecting to the database")
                let connection = try await connect()
                session = connection
                try await Schema.migrate(on: connection, logger: logger)
                try await waitForLeadership(on: connection)
                try await lead(on: connection)
            } catch {
                leading = false
                if let session { await session.close() }
                if Task.isCancelled || error is CancellationError { break }
                if error is Reconnect {
                    needsReconnect = false
                    continue
                }
                if (error as? PostgresError)?.isServerUnavailable == true {
                    databaseDown(error)
                    continue
                }
                failures += 1
                let delay = configuration.reconnect.delay(afterAttempt: failures)
                logger.error("\(error); starting over in \(Self.seconds(delay))")
                setStatus("error: \(error); starting over")
                sendReadyOnce()
                do { try await sleepHandlingReload(delay) } catch { break }
            }
        }
        leading = false
    }
}
