// The STATUS= line systemd shows, READY=1, and the times and durations written in it.
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres
import GallraSystemd
import Logging

extension DaemonLoop {
    func setStatus(_ text: String) {
        guard text != status else { return }
        status = text
        try? notifier.status(text)
    }

    func sendReadyOnce() {
        guard !readySent else { return }
        readySent = true
        try? notifier.ready(status: status)
    }

    /// `02:13:05` (UTC).
    static func clock(_ date: Date) -> String {
        String(PostgresTimestamp(date).secondsText.dropFirst(11))
    }

    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return NumberText.fixed(Double(seconds) + Double(attoseconds) / 1e18, digits: 1) + " s"
    }
}
