#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraEngine
import GallraMetrics
import GallraSystemd
import Logging
import ServiceLifecycle
import UnixSignals

/// The gallra daemon as a swift-service-lifecycle `Service`: connects (retrying while the database is down),
/// migrates, becomes the one runner of the database or a standby, runs the policies on their schedules and on
/// triggers, and stops gracefully (`STOPPING=1`, the batch in flight committed or rolled back).
public struct GallraService: Service {
    let configuration: DaemonConfiguration
    let reloadConfiguration: @Sendable () async throws -> DaemonConfiguration
    let logger: Logger
    let notifier: SystemdNotifier
    let metrics: MetricsExport?
    let endpoint: MetricsEndpoint?

    /// A service with its first configuration and the way to read a new one on SIGHUP; with `metrics`, it writes
    /// the textfile after each batch and run, and serves `endpoint` while it runs.
    public init(
        configuration: DaemonConfiguration,
        reloadConfiguration: @escaping @Sendable () async throws -> DaemonConfiguration,
        logger: Logger,
        notifier: SystemdNotifier = SystemdNotifier(),
        metrics: MetricsExport? = nil,
        endpoint: MetricsEndpoint? = nil
    ) {
        self.configuration = configuration
        self.reloadConfiguration = reloadConfiguration
        self.logger = logger
        self.notifier = notifier
        self.metrics = metrics
        self.endpoint = endpoint
    }

    public func run() async throws {
        let events = DaemonEvents()
        let heartbeat = Heartbeat()
        let (configuration, reloadConfiguration, logger, notifier, metrics) = (
            self.configuration, self.reloadConfiguration, self.logger, self.notifier, self.metrics
        )
        let signals = await UnixSignalsSequence(trapping: .sighup, .sigusr1)
        let running = RunningThrottle()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await signal in signals {
                    if signal == .sighup {
                        events.post(.reload)
                        await running.reload(reloadConfiguration, logger: logger)
                    } else if signal == .sigusr1 {
                        events.post(.trigger(TriggerRequest(), source: "signal"))
                    }
                }
            }
            if let endpoint {
                group.addTask {
                    do {
                        try await endpoint.run(logger: logger)
                    } catch  where !Task.isCancelled {
                        // The purge matters more than its metrics: the service goes on without the endpoint.
                        logger.error(
                            "metrics: cannot serve GET /metrics on \(endpoint.address): \(error); the textfile (if any) is still written",
                            metadata: ["metrics.listen": "\(endpoint.address)"])
                    } catch {}
                }
            }
            if let interval = notifier.watchdogPingInterval {
                group.addTask {
                    await Self.pingWatchdog(
                        every: interval, while: heartbeat, stallTimeout: configuration.stallTimeout,
                        notifier: notifier, logger: logger)
                }
            }
            await withGracefulShutdownHandler {
                await cancelWhenGracefulShutdown {
                    let loop = DaemonLoop(
                        configuration: configuration, reloadConfiguration: reloadConfiguration, logger: logger,
                        notifier: notifier, events: events, heartbeat: heartbeat, runningThrottle: running,
                        metrics: metrics)
                    await loop.run()
                }
            } onGracefulShutdown: {
                logger.notice(
                    "stopping: no new batch is taken; the batch in flight commits or is rolled back",
                    metadata: JournalEvent.stopping.metadata())
                try? notifier.stopping(status: "stopping: finishing or cancelling the batch in flight")
            }
            group.cancelAll()
        }
    }
}

// swift-service-lifecycle logs a service by its description (at debug level): never the configuration, which holds
// the audit key and the database password.
extension GallraService: CustomStringConvertible {
    public var description: String { "GallraService" }
}

/// Runs gallra's service in a `ServiceGroup`: SIGTERM and SIGINT shut it down gracefully within
/// `maximumGracefulShutdownDuration` (below the unit's `TimeoutStopSec=60s`).
public enum Daemon {
    public static func run(
        configuration: DaemonConfiguration,
        reloadConfiguration: @escaping @Sendable () async throws -> DaemonConfiguration,
        logger: Logger,
        metrics: MetricsExport? = nil,
        endpoint: MetricsEndpoint? = nil,
        maximumGracefulShutdownDuration: Duration = .seconds(45)
    ) async throws {
        let service = GallraService(
            configuration: configuration, reloadConfiguration: reloadConfiguration, logger: logger,
            metrics: metrics, endpoint: endpoint)
        var groupConfiguration = ServiceGroupConfiguration(
            services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = maximumGracefulShutdownDuration
        try await ServiceGroup(configuration: groupConfiguration).run()
    }
}
