// SIGHUP: the configuration and the policies read again.
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
    /// SIGHUP: `RELOADING=1`, re-read the configuration (an invalid one is logged and the old one kept) and, when
    /// leading, the policies; then `READY=1`.
    func reload(connection: PostgresConnection?) async throws {
        if readySent { try? notifier.reloading(status: "reloading the configuration and policies") }
        logger.notice("reloading the configuration and policies (SIGHUP)", metadata: JournalEvent.reload.metadata())
        do {
            let new = try await reloadConfiguration()
            if new.connectsDifferently(from: configuration) { needsReconnect = true }
            configuration = new
            logger.logLevel = new.logLevel
            requestsCheckAt = .now  // under the new requests.sweep
        } catch {
            logger.error(
                "the new configuration is invalid, the previous one stays in force: \(error)",
                metadata: JournalEvent.reload.metadata())
        }
        do {
            if let connection, leading { try await loadPolicies(on: connection) }
        } catch {
            if readySent { try? notifier.ready(status: status) }
            throw error
        }
        if readySent { try? notifier.ready(status: leading ? scheduler.idleStatus(now: Date()) : status) }
    }
}
