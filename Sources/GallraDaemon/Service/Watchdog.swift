// The watchdog: systemd restarts a gallra whose main loop has stopped showing signs of life.
import GallraSystemd
import Logging
import Synchronization

/// The main loop's last sign of life, which the watchdog task checks before each ping.
///
/// The loop beats between steps of its work (and a run between batches); while it waits for its next event it is
/// idle rather than stalled, so a wait of any length keeps it fresh.
final class Heartbeat: Sendable {
    private struct State {
        var last = ContinuousClock.now
        var waiting = false
    }

    private let state = Mutex(State())

    func beat() {
        state.withLock { $0.last = .now }
    }

    /// Marks the start (true) or the end (false) of a wait for the next event; each is a beat too.
    func setWaiting(_ waiting: Bool) {
        state.withLock { $0 = State(last: .now, waiting: waiting) }
    }

    func isFresh(within limit: Duration) -> Bool {
        state.withLock { $0.waiting || ContinuousClock.now - $0.last <= limit }
    }
}

extension GallraService {
    /// `WATCHDOG=1` every `interval` while the main loop shows signs of life: it is waiting for its next event, or
    /// it beats between batches and while it retries the database, so neither a long query nor an outage stops the
    /// pings; a loop silent for `stallTimeout` (or a stopped process) does, and systemd restarts the service.
    static func pingWatchdog(
        every interval: Duration, while heartbeat: Heartbeat, stallTimeout: Duration, notifier: SystemdNotifier,
        logger: Logger
    ) async {
        var stalled = false
        while !Task.isCancelled {
            if heartbeat.isFresh(within: stallTimeout) {
                do {
                    try notifier.watchdog()
                } catch {
                    logger.warning("\(error)")
                }
                stalled = false
            } else if !stalled {
                stalled = true
                logger.critical(
                    "the main loop has shown no sign of life for \(stallTimeout); watchdog pings stop, so systemd restarts gallra"
                )
            }
            try? await Task.sleep(for: interval)
        }
    }
}
