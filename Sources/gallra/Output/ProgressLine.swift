import Foundation
import GallraEngine

/// A progress line on a terminal: `inactive-customers 1500/2959 subjects, 5200 rows/s, 00:12 left`.
final class ProgressLine: @unchecked Sendable {
    private let enabled: Bool
    private let lock = NSLock()

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ progress: RunProgress) {
        guard enabled else { return }
        var line = "\(progress.policy) \(progress.subjectsDone)/\(progress.subjectsTotal) subjects"
        if let reason = progress.pausedBy {
            line += ", paused: \(reason)"
        } else {
            line += String(format: ", %.0f rows/s", progress.rowsPerSecond)
        }
        if let left = progress.estimatedRemaining {
            let seconds = Int(left.components.seconds)
            line += String(format: ", %02d:%02d left", seconds / 60, seconds % 60)
        }
        lock.withLock { StandardError.write("\r\u{1B}[K" + line) }
    }

    func finish() {
        guard enabled else { return }
        lock.withLock { StandardError.write("\r\u{1B}[K") }
    }
}
