import Logging
import Metrics
import Prometheus
import Synchronization

/// The process's metrics: swift-metrics bootstrapped with a Prometheus registry, written as a node_exporter textfile
/// and served on `GET /metrics` as the configuration asks.
public final class MetricsExport: Sendable {
    /// The registry every metric of the process lands in.
    public let registry: PrometheusCollectorRegistry
    /// The textfile (`metrics.textfile`), if any.
    public let textfile: String?
    private let logger: Logger
    /// The last write error logged, so that a failing write is logged once, not after every batch. Its lock also
    /// orders the writes: parallel batches (`limits.parallel`) never put an older snapshot over a newer one.
    private let lastError = Mutex<String?>(nil)

    init(registry: PrometheusCollectorRegistry, textfile: String?, logger: Logger) {
        self.registry = registry
        self.textfile = textfile
        self.logger = logger
    }

    /// Bootstraps swift-metrics with a new Prometheus registry: at most once per process (swift-metrics allows
    /// no second bootstrap). `durationBuckets` sets a timer's histogram buckets by its label.
    public static func bootstrap(
        textfile: String?, durationBuckets: [String: [Duration]] = [:], logger: Logger
    ) -> MetricsExport {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = durationBuckets
        MetricsSystem.bootstrap(factory)
        return MetricsExport(registry: registry, textfile: textfile, logger: logger)
    }

    /// The metrics in Prometheus's text exposition format (version 0.0.4), ending in a line feed as the format
    /// asks (the registry leaves the last one out).
    public func exposition() -> [UInt8] {
        var text = registry.emitToBuffer()
        if let last = text.last, last != UInt8(ascii: "\n") { text.append(UInt8(ascii: "\n")) }
        return text
    }

    /// Writes the textfile atomically, or throws why it cannot: at start, where a file that cannot be written is
    /// a configuration to fix.
    public func writeTextfile() throws {
        guard let textfile else { return }
        try MetricsTextfile.save(exposition(), to: textfile)
    }

    /// Writes the textfile atomically after a batch or a run. A failure is logged (once until the next success)
    /// and never stops the run: node_exporter then reports the file's age.
    public func update() {
        guard let textfile else { return }
        lastError.withLock { last in
            do {
                try MetricsTextfile.save(exposition(), to: textfile)
                last = nil
            } catch {
                let text = "\(error)"
                if last != text {
                    logger.warning("cannot write the metrics textfile: \(text)", metadata: ["file": "\(textfile)"])
                }
                last = text
            }
        }
    }
}
