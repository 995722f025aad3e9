import GallraPolicy
import GallraPostgres
import Logging

extension LivePolicyRun {
    /// The policy's bookkeeping pruned after its batches (``Engine/pruneBookkeeping(of:version:statementTimeout:)``);
    /// left out when the run processes one erasure request (the sweep that processed it prunes) or replays subjects
    /// after a restore (the policy's next run prunes).
    func prune(planner: Planner) async throws -> Int {
        guard policy.requests == .due, policy.replayKeys == nil else { return 0 }
        return try await engine.pruneBookkeeping(
            of: planner, version: policy.version, statementTimeout: options.statementTimeout)
    }
}

extension Engine {
    /// Entries of `gallra.processed` and `gallra.processed_row` each statement of the pruning looks at.
    static let pruneBatch = 1000

    /// Removes the policy's entries of `gallra.processed` and `gallra.processed_row` whose rows are gone
    /// (``Planner/pruneProcessed()``): a statement per `pruneBatch` entries, each its own short transaction, so the
    /// tables stay bounded by the live rows they name. Returns how many entries went.
    ///
    /// `processed` is left as it is when the policy's stored versions name more than one subject table or key: an
    /// entry's key is then not known to belong to the table it would be checked against. A failure other than the
    /// server going away is logged and ends the pruning, never the run: the entries stay for the next time.
    func pruneBookkeeping(of planner: Planner, version: Int, statementTimeout: Duration) async throws -> Int {
        guard !Task.isCancelled else { return 0 }
        let name = planner.resolved.name.rawValue
        var processed = 0
        var rows = 0
        do {
            if try await Self.hasOneSubject(name, on: connection) {
                processed = try await prune(planner.pruneProcessed(), policy: name, timeout: statementTimeout)
            }
            for statement in planner.pruneProcessedRows() {
                rows += try await prune(statement, policy: name, timeout: statementTimeout)
            }
        } catch {
            if let postgres = error as? PostgresError, postgres.isServerUnavailable { throw error }
            if Task.isCancelled || error is CancellationError { return processed + rows }
            logger.warning(
                "pruning gallra.processed and gallra.processed_row stopped (\(Engine.describe(error))); the next run goes on with it",
                metadata: ["policy": "\(name)"])
        }
        if processed + rows > 0 {
            logger.info(
                "\(name): pruned \(processed) entries of gallra.processed and \(rows) of gallra.processed_row whose rows are gone",
                metadata: [
                    "policy": "\(name)", "policy.version": "\(version)", "pruned.processed": "\(processed)",
                    "pruned.processed_row": "\(rows)",
                ])
        }
        return processed + rows
    }

    /// Runs one pruning statement over every entry it covers, `pruneBatch` at a time; returns the entries deleted.
    private func prune(_ statement: PlannedStatement, policy: String, timeout: Duration) async throws -> Int {
        // The statements bind only the policy, the last key looked at and the limit.
        var bindings = Bindings(asOf: PostgresTimestamp(microsecondsSince2000: 0), policyName: policy)
        bindings.limit = Self.pruneBatch
        var pruned = 0
        while !Task.isCancelled {
            let row = try await connection.query(statement.sql, Self.values(statement, bindings), timeout: timeout)
                .first
            pruned += try row?.decode("pruned", as: Int.self) ?? 0
            guard let last = try row?.decode("last", as: String?.self) else { break }
            bindings.afterKey = last
        }
        return pruned
    }

    /// Whether every stored version of policy `name` names one subject table and key (true when none is stored).
    static func hasOneSubject(_ name: String, on connection: PostgresConnection) async throws -> Bool {
        let row = try await connection.query(
            "SELECT count(DISTINCT definition->'subject') AS subjects FROM gallra.policy WHERE name = $1",
            [.text(name)]
        ).first
        return try (row?.decode("subjects", as: Int.self) ?? 0) <= 1
    }
}
