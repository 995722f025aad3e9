import Logging
import Synchronization

/// Holds a live run's batches back while a standby replays further behind the primary than the configured
/// bounds (`throttle.replica_lag`, `throttle.replica_lag_bytes`), so that a large purge does not leave the
/// read replicas serving stale data, or make the primary keep WAL a standby still needs.
///
/// Before each batch the run asks the ``ReplicaLagSource``; while a standby is beyond a bound it polls again
/// every `pollInterval` and takes no batch. Unknown lag (no standby, a hidden lag column, a server that is
/// itself a standby) never holds a run back.
public final class ReplicaThrottle: Sendable {
    /// The bounds in force: those it was made with, or the latest ``update(_:)``.
    public var limits: ReplicaLagLimits { current.withLock { $0 } }
    private let current: Mutex<ReplicaLagLimits>
    let source: any ReplicaLagSource
    let pollInterval: Duration
    let reminderInterval: Duration
    /// Whether the hidden lag has been warned about (once per throttle, that is once per run).
    private let warnedHidden = Mutex(false)

    /// A throttle on `source` with `limits`; it polls every `pollInterval` while paused and repeats the pause
    /// notice every `reminderInterval`.
    public init(
        limits: ReplicaLagLimits, source: any ReplicaLagSource, pollInterval: Duration = .seconds(1),
        reminderInterval: Duration = .seconds(60)
    ) {
        self.current = Mutex(limits)
        self.source = source
        self.pollInterval = pollInterval
        self.reminderInterval = reminderInterval
    }

    /// New bounds, in force from the next look at the standbys (at most `pollInterval` away): the service's reload
    /// lifts a pause that a raised or removed bound no longer calls for, and a bound set then holds the next batch.
    public func update(_ limits: ReplicaLagLimits) {
        current.withLock { $0 = limits }
    }

    /// Returns when no standby is beyond the bounds, at once when none is (or no bound is set). While paused it logs
    /// one notice when pausing, one a `reminderInterval` while it lasts, and one when resuming; calls `waiting` at
    /// every poll (the daemon's watchdog heartbeat and `STATUS=`); and adds the time paused to `throttledSeconds`,
    /// also when cancellation ends the wait (then it throws `CancellationError`). The bounds are read at every poll.
    func waitWhileLagging(
        logger: Logger, metadata: Logger.Metadata, throttledSeconds: inout Double,
        waiting: (ReplicaLagExcess) -> Void
    ) async throws {
        let clock = ContinuousClock()
        var pausedAt: ContinuousClock.Instant?
        var remindedAt = clock.now
        defer {
            if let pausedAt { throttledSeconds += Self.seconds(clock.now - pausedAt) }
        }
        while true {
            try Task.checkCancellation()
            // Read at every poll: a reload may have changed the bounds while paused.
            let limits = self.limits
            guard limits.isEnabled else { break }
            let reading = try await source.read()
            warnIfHidden(reading, logger: logger, metadata: metadata)
            guard let excess = limits.excess(in: reading) else { break }
            var fields = metadata
            fields["replica"] = "\(excess.standby)"
            switch excess.measure {
            case .time(let lag, _): fields["replica.lag_seconds"] = "\(Self.seconds(lag))"
            case .bytes(let bytes, _): fields["replica.lag_bytes"] = "\(bytes)"
            }
            let now = clock.now
            if let since = pausedAt {
                if now - remindedAt >= reminderInterval {
                    remindedAt = now
                    logger.notice(
                        "batches still paused after \(ReplicaLagExcess.seconds(now - since)): \(excess)",
                        metadata: JournalEvent.batchesPaused.metadata(fields))
                }
            } else {
                pausedAt = now
                remindedAt = now
                logger.notice("batches paused: \(excess)", metadata: JournalEvent.batchesPaused.metadata(fields))
            }
            waiting(excess)
            try await Task.sleep(for: pollInterval)
        }
        guard let since = pausedAt else { return }
        let paused = clock.now - since
        var fields = metadata
        fields["throttle.paused_seconds"] = "\(Self.seconds(paused))"
        logger.notice(
            "batches resumed: replica lag is within the bounds again after a pause of \(ReplicaLagExcess.seconds(paused))",
            metadata: JournalEvent.batchesResumed.metadata(fields))
    }

    /// One warning per throttle when a standby's lag is hidden from gallra's role: that standby cannot hold
    /// batches back until the role may read it.
    private func warnIfHidden(_ reading: ReplicaLagReading, logger: Logger, metadata: Logger.Metadata) {
        guard !reading.inRecovery, let hidden = reading.standbys.first(where: { !$0.visible }) else { return }
        let first = warnedHidden.withLock { warned in
            defer { warned = true }
            return !warned
        }
        guard first else { return }
        var fields = metadata
        fields["replica"] = "\(hidden.name)"
        logger.warning(
            "replica lag is not visible to role \(reading.role) (pg_stat_replication shows its lag columns as NULL), so replica \(hidden.name.isEmpty ? "(unnamed)" : hidden.name) does not throttle batches; GRANT pg_monitor TO \(reading.role)",
            metadata: JournalEvent.replicaLagHidden.metadata(fields))
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
