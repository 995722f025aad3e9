#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Synchronization
import GallraCore
import GallraEngine

/// A run's progress on standard error: `inactive-customers 1500/2959 subjects, 5200 rows/s, 00:12 left`.
///
/// On a terminal the line is rewritten after each batch. Elsewhere (a file, a pipe, the journal) a plain
/// `progress: ...` line is written at most every `interval`, the first one `interval` after the start: a log
/// shows a long run going on, without a line per batch, and a short run adds nothing.
final class ProgressLine: @unchecked Sendable {
    /// Where the line goes.
    enum Style: Sendable {
        case none
        case terminal
        case plain(interval: Duration)
    }

    /// How often a plain line is written.
    static let plainInterval = Duration.seconds(10)

    private let style: Style
    /// When the last plain line was written (the start before the first).
    private let lastLine = Mutex(ContinuousClock.now)

    init(style: Style) { self.style = style }

    /// A terminal's line when standard error is one, plain lines otherwise; none when `enabled` is false.
    convenience init(enabled: Bool, terminal: Bool) {
        self.init(style: !enabled ? .none : terminal ? .terminal : .plain(interval: Self.plainInterval))
    }

    func show(_ progress: RunProgress) {
        let line = Self.text(progress)
        switch style {
        case .none: return
        case .terminal:
            lastLine.withLock { _ in StandardError.write("\r\u{1B}[K" + line) }
        case .plain(let interval):
            lastLine.withLock { last in
                let now = ContinuousClock.now
                guard now - last >= interval else { return }
                last = now
                StandardError.write("progress: " + line + "\n")
            }
        }
    }

    func finish() {
        guard case .terminal = style else { return }
        lastLine.withLock { _ in StandardError.write("\r\u{1B}[K") }
    }

    static func text(_ progress: RunProgress) -> String {
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
        return line
    }
}
