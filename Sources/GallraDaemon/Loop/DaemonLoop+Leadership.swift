// One runner per database: the runner lock, and waiting as a standby.
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
    /// Takes the runner lock, or waits as a standby (retrying every `standbyRetry`) until the other gallra is gone.
    func waitForLeadership(on connection: PostgresConnection) async throws {
        var standby = false
        while true {
            heartbeat.beat()
            if try await Engine.tryAcquireRunnerLock(on: connection) {
                leading = true
                let abandoned = try await Engine.closeAbandonedRuns(on: connection)
                if abandoned > 0 {
                    logger.warning(
                        "\(abandoned) earlier run(s) had stopped without finishing; marked interrupted",
                        metadata: ["runs": "\(abandoned)"])
                }
                logger.notice(
                    standby
                        ? "taking over: the other gallra is gone; this one now runs the policies on this database"
                        : "leader: this gallra runs the policies on this database",
                    metadata: JournalEvent.leader.metadata())
                return
            }
            if !standby {
                standby = true
                logger.notice(
                    "standby: another gallra runs policies on this database; this one takes over when it stops",
                    metadata: JournalEvent.standby.metadata())
            }
            setStatus("standby: another gallra runs policies on this database")
            sendReadyOnce()
            try await sleepHandlingReload(configuration.standbyRetry)
            if needsReconnect { throw Reconnect() }
        }
    }
}
