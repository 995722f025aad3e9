import GallraEngine
import Logging
import Synchronization

/// The replica-lag throttle of the live run in progress, if any, shared with the signal task: a SIGHUP during a run
/// gives the run the new configuration's bounds at once. The main loop, busy with the run, handles the rest of the
/// reload (settings, policies, `RELOADING=1`) when the run ends.
final class RunningThrottle: Sendable {
    private let throttle = Mutex<ReplicaThrottle?>(nil)

    /// Sets (or, with nil, clears) the throttle of the run in progress.
    func set(_ throttle: ReplicaThrottle?) {
        self.throttle.withLock { $0 = throttle }
    }

    /// SIGHUP: during a run, re-reads the configuration and hands its replica-lag bounds to the run's throttle, so
    /// that a pause the new bounds no longer call for ends within a poll. An invalid configuration changes nothing
    /// here; the main loop says why when it reloads after the run.
    func reload(
        _ reloadConfiguration: @Sendable () async throws -> DaemonConfiguration, logger: Logger
    ) async {
        guard let throttle = throttle.withLock({ $0 }) else { return }
        guard let configuration = try? await reloadConfiguration() else { return }
        let limits = configuration.replicaLag
        guard limits != throttle.limits else { return }
        throttle.update(limits)
        var bounds: [String] = []
        if let lag = limits.replayLag { bounds.append("throttle.replica_lag \(lag.components.seconds) s") }
        if let bytes = limits.replayBytes { bounds.append("throttle.replica_lag_bytes \(ByteSize.format(bytes))") }
        logger.notice(
            "reload during a run: the run's replica-lag bounds are now \(bounds.isEmpty ? "off" : bounds.joined(separator: ", ")); the rest of the configuration and the policies are reloaded when the run ends",
            metadata: JournalEvent.reload.metadata())
    }
}
