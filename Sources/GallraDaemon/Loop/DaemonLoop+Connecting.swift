// Connecting to the database, retrying with backoff while it is down.
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
    /// Connects, retrying with backoff and jitter while the database is down. Before `READY=1` each retry extends
    /// the start-up timeout, so that a database still booting does not get gallra killed.
    func connect() async throws -> PostgresConnection {
        var attempt = 0
        while true {
            heartbeat.beat()
            try Task.checkCancellation()
            do {
                let connection = try await PostgresConnection.connect(
                    configuration.database, password: configuration.password,
                    idleInTransactionTimeout: configuration.idleInTransactionTimeout, logger: logger)
                if let since = unreachableSince {
                    unreachableSince = nil
                    logger.notice(
                        "database reachable again (unreachable since \(Self.clock(since)))",
                        metadata: JournalEvent.databaseBack.metadata())
                }
                return connection
            } catch let error as PostgresError where error.code == .cancelled {
                throw CancellationError()
            } catch {
                databaseDown(error)
                attempt += 1
                let delay = configuration.reconnect.delay(afterAttempt: attempt)
                if !readySent { try? notifier.extendTimeout(delay + .seconds(40)) }
                try await sleepHandlingReload(delay)
                if needsReconnect { needsReconnect = false }
            }
        }
    }

    func databaseDown(_ error: any Error) {
        leading = false
        if unreachableSince == nil {
            let now = Date()
            unreachableSince = now
            logger.warning(
                "database unreachable: \(error); retrying with backoff until it is back",
                metadata: JournalEvent.databaseUnreachable.metadata())
        }
        setStatus("database unreachable since \(Self.clock(unreachableSince ?? Date())); retrying")
    }
}
