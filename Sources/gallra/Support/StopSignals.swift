import Logging
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// SIGINT (Ctrl-C) and SIGTERM while `gallra run --once` changes data. The first cancels the run: it takes no
/// new batch, the batch in flight is cancelled and rolls back, and the run ends as `interrupted` with its
/// report, its committed batches done and audited. A second signal ends the process at once; the server rolls
/// back what was open, and the next run marks the run interrupted.
enum StopSignals {
    static func cancelling<Result: Sendable>(
        logger: Logger, _ work: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let task = Task { try await work() }
        let watcher = Task {
            var received = 0
            for await signal in signals {
                received += 1
                guard received == 1 else {
                    logger.warning("\(signal) again: stopping now; the batch in flight is rolled back")
                    exit(128 + signal.rawValue)
                }
                logger.notice(
                    """
                    \(signal): stopping; the batch in flight is rolled back, committed batches stay done and \
                    audited; run again to go on (\(signal) again stops at once)
                    """)
                task.cancel()
            }
        }
        defer { watcher.cancel() }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }
}
