import GallraPostgres
import Logging
import Synchronization

extension Engine {
    /// Errors that concern one batch (lock conflicts, timeouts, serialization failures, deadlocks, and
    /// constraint or trigger errors raised by the batch's rows): the batch is skipped, after retries for those
    /// that waiting may cure (not a refusal, ``isRefusal(_:)``: the steps isolate the subject that raises one, so
    /// one still met here was raised outside them). Anything else (a missing table, a privilege, a lost
    /// connection) fails the policy.
    static func isBatchError(_ error: any Error) -> Bool {
        guard let error = error as? PostgresError, error.code != .cancelled else { return false }
        if error.isRetryable || error.isQueryCanceled { return true }
        guard error.code == .server || error.code == .transactionRolledBack, let state = error.sqlState else {
            return false
        }
        return [.integrityConstraintViolation, .dataException, .plpgsqlError, .transactionRollback].contains(
            state.errorClass)
    }
}

extension LivePolicyRun {
    /// Runs one batch, retrying batch errors with backoff. Returns nil when the batch was skipped after its last
    /// attempt (recorded in `tally`).
    func attempts(
        _ claim: BatchClaim, _ connection: PostgresConnection, _ planner: Planner, _ plans: [StepPlan],
        _ bindings: Engine.Bindings, _ tally: BatchTally
    ) async throws -> BatchOutcome? {
        let picked = PickedKeys()
        var attempt = 0
        while true {
            attempt += 1
            do {
                var batch = bindings
                batch.afterKey = claim.after
                batch.limit = claim.limit
                if let range = picked.range {
                    // A retry picks within the range its first attempt took: the next batch has started after it.
                    guard let last = range.last else { return BatchOutcome(picked: [], subjects: 0, steps: []) }
                    batch.upToKey = last
                }
                let frozen = batch
                let outcome = try await connection.transaction { connection in
                    try await self.batch(
                        planner: planner, plans: plans, bindings: frozen, picked: picked, on: connection
                    ) { keys in await tally.picked(claim, keys) }
                }
                for subject in outcome.left { logLeft(subject, batch: claim.number) }
                return outcome
            } catch {
                if Task.isCancelled { throw CancellationError() }
                guard Engine.isBatchError(error) else { throw error }
                if attempt < options.maxAttempts, !Engine.isRefusal(error) {
                    try await Task.sleep(for: backoff(attempt))
                    continue
                }
                guard let range = picked.range, !range.isEmpty else { throw error }
                let postgres = error as? PostgresError
                await tally.skipped(
                    claim,
                    BatchFailure(
                        batch: claim.number, subjects: picked.value.count, attempts: attempt,
                        error: Engine.describe(error), sqlState: postgres?.sqlState?.rawValue))
                logger.error(
                    "batch \(claim.number) skipped after \(attempt) attempts: \(Engine.describe(error))",
                    metadata: JournalEvent.batchSkipped.metadata([
                        "policy": "\(name)", "policy.version": "\(policy.version)",
                        "subjects": "\(picked.value.count)",
                    ]))
                return nil
            }
        }
    }

    /// The journal's entry for a subject a batch left: its digest, never its key; the reason, the table and the
    /// SQLSTATE, but not the server's message (a trigger may word it with the subject's values).
    func logLeft(_ subject: LeftSubject, batch: Int) {
        var metadata: Logger.Metadata = [
            "policy": "\(name)", "policy.version": "\(policy.version)", "subject.digest": "\(subject.digest)",
            "batch": "\(batch)", "reason": "\(subject.reason)",
        ]
        if let table = subject.table { metadata["table"] = "\(table)" }
        if let state = subject.sqlState { metadata["sqlstate"] = "\(state)" }
        let code = subject.sqlState.map { " (SQLSTATE \($0))" } ?? ""
        let table = subject.table.map { " in \($0)" } ?? ""
        logger.warning(
            "subject \(subject.digest) left in batch \(batch): \(subject.reason)\(table)\(code); a later run takes it",
            metadata: JournalEvent.subjectLeft.metadata(metadata))
    }

    /// Exponential backoff with up to 50 % jitter.
    func backoff(_ attempt: Int) -> Duration {
        let base = options.retryBackoff * (1 << min(attempt - 1, 10))
        return base + base * Double.random(in: 0..<0.5)
    }
}

/// The batch's picked keys, kept outside the transaction: the first attempt's fix the batch's range, and the last
/// attempt's are the subjects of a skipped batch.
final class PickedKeys: Sendable {
    private let state = Mutex<(keys: [String], range: [String]?)>(([], nil))

    /// Records an attempt's keys; true for the first attempt that picked.
    func set(_ keys: [String]) -> Bool {
        state.withLock {
            $0.keys = keys
            guard $0.range == nil else { return false }
            $0.range = keys
            return true
        }
    }
    /// The last attempt's keys.
    var value: [String] { state.withLock { $0.keys } }
    /// The first attempt's keys, once it picked.
    var range: [String]? { state.withLock { $0.range } }
}
