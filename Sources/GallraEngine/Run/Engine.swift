import GallraPostgres
import Logging

/// Runs policies: live (batched, audited deletes and anonymizations) or dry (one read-only transaction that
/// counts what a live run at the same instant would do).
///
/// A live batch is one transaction: pick and lock up to `batch_size` due subjects (`SKIP LOCKED`) in key
/// order, identify and lock the rows they point to, run every step on exactly those subjects, append one
/// audit block, remember processed subjects whose row remains, commit. Rows never travel through gallra:
/// statements return per-subject counts, and for rows the subject points to their keys.
public struct Engine: Sendable {
    let connection: PostgresConnection
    let auditKey: AuditKey?
    let logger: Logger

    /// An engine on `connection`; live runs need `auditKey` (dry runs work without).
    public init(connection: PostgresConnection, auditKey: AuditKey?, logger: Logger = Logger(label: "gallra.engine")) {
        self.connection = connection
        self.auditKey = auditKey
        self.logger = logger
    }

    /// Runs `policies` in order. A failing policy is recorded and the others go on; cancellation stops the run
    /// between batches (a batch in flight rolls back) with outcome `interrupted`.
    public func run(
        _ policies: [RunPolicy], options: RunOptions, progress: @escaping @Sendable (RunProgress) -> Void = { _ in }
    ) async throws -> RunReport {
        switch options.mode {
        case .dry: return try await dryRun(policies, options: options)
        case .live: return try await liveRun(policies, options: options, progress: progress)
        }
    }

    /// An error's text for reports and logs: generic (``PostgresError`` never includes row values).
    static func describe(_ error: any Error) -> String {
        String(describing: error)
    }
}
