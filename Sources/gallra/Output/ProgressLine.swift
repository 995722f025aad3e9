#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Synchronization
import GallraCore
import GallraEngine

/// A progress line on a terminal: `inactive-customers 1500/2959 subjects, 5200 rows/s, 00:12 left`.
final class ProgressLine: @unchecked Sendable {
    private let enabled: Bool
    private let lock = Mutex(())

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ progress: RunProgress) {
        guard enabled else { return }
        var line = "\(progress.policy) \(progress.subjectsDone)/\(progress.subjectsTotal) subjects"
        if let reason = progress.pausedBy {
            line += ", paused: \(reason)"
        } else {
            line += ", " + NumberText.fixed(progress.rowsPerSecond, digits: 0) + " rows/s"
        }
        if let left = progress.estimatedRemaining {
            let seconds = Int(left.components.seconds)
            line +=
                ", \(NumberText.zeroPadded(seconds / 60, width: 2)):\(NumberText.zeroPadded(seconds % 60, width: 2)) left"
        }
        lock.withLock { _ in StandardError.write("\r\u{1B}[K" + line) }
    }

    func finish() {
        guard enabled else { return }
        lock.withLock { _ in StandardError.write("\r\u{1B}[K") }
    }
}
