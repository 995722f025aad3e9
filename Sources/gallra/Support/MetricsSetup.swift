import GallraCore
import GallraEngine
import GallraMetrics
import Logging

/// The metrics of the service and of `run --once`: bootstrapped once per process when `metrics.textfile` or
/// `metrics.listen` is set; the other commands count nothing.
enum MetricsSetup {
    /// Bootstraps swift-metrics with the Prometheus registry and writes the textfile once, so that a path gallra
    /// cannot write fails the start (78) rather than every batch; nil when no metrics are configured.
    static func start(_ settings: Settings, logger: Logger) throws -> MetricsExport? {
        guard settings.metricsTextfile != nil || settings.metricsListen != nil else { return nil }
        let export = MetricsExport.bootstrap(
            textfile: settings.metricsTextfile,
            durationBuckets: [RunMetrics.batchDuration: RunMetrics.batchDurationBuckets], logger: logger)
        RunMetrics.prepare()
        do {
            try export.writeTextfile()
        } catch {
            throw CommandFailure(.configuration, "metrics.textfile: \(error)")
        }
        return export
    }
}
