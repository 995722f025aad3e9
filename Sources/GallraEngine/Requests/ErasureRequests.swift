#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraPolicy
import GallraPostgres
import Logging

/// Processing the erasure request queue (`gallra.erasure_request`, docs/requests.md): each due request is claimed,
/// checked (on-request policy, legal hold, subject, exemptions), carried out by a live run of its table's
/// on-request policies narrowed to its subject, and decided in one transaction that replaces its key by the
/// subject's audit digest.
extension Engine {
    /// The advisory lock space of requests (`pg_advisory_lock(int, int)`: apart from the runner lock's bigint key).
    public static let erasureLockClass: Int32 = 0x6761_6C72

    /// Processes the requests `selection` names, one after the other, and says what each came to.
    ///
    /// A request is claimed with a session advisory lock of its own, so that two gallra processes never process one
    /// request: `.due` skips a request another holds, `.ids` waits for it and then reports its outcome. A claimed,
    /// pending, due request is refused when no active on-request policy covers its table, a legal hold in force stops
    /// it, its subject row does not exist (unless the audit trail shows the subject erased on request since the
    /// request was made: then it is done), or an exemption of an on-request policy keeps the subject. Otherwise the
    /// table's active on-request policies run live for the subject (trigger `erase`, one `gallra.run` row, the usual
    /// batches), those that keep the subject row first. Then, in one transaction: done when no on-request policy
    /// still finds the subject due, with the run and the counts of the subject's audit records; else still pending
    /// with one more attempt (the shop held a row: tried again later). A decided request's key is replaced by its
    /// digest; so is the key of a request cancelled through SQL since.
    ///
    /// - Parameters:
    ///   - options: the live run's settings; the mode, trigger (`erase`) and instant (now) are set here.
    ///   - progress: called as each request is taken up and after each batch of its run.
    /// - Throws: ``RunError/missingAuditKey`` without an audit key (exit 78); `PostgresError` for a failing server.
    public func processErasureRequests(
        _ selection: ErasureSelection, options: RunOptions = RunOptions(mode: .live),
        progress: @escaping @Sendable (ErasureProgress) -> Void = { _ in }
    ) async throws -> [ErasureOutcome] {
        guard let auditKey else { throw RunError.missingAuditKey }
        try await Schema.requireCurrent(on: connection)
        let digester = auditKey.digester
        let runnable = try await RunnablePolicies.load(on: connection, names: [], includeDrafts: false)
        for invalid in runnable.invalid {
            logger.warning(
                "policy left out of erasure requests: \(invalid.reason)", metadata: ["policy": "\(invalid.name)"])
        }
        try await replaceDecidedKeys(policies: runnable.policies, digester: digester)
        let ids: [Int64]
        let wait: Bool
        switch selection {
        case .due:
            ids = try await connection.query(
                """
                SELECT id FROM gallra.erasure_request
                WHERE status = 'pending' AND not_before <= clock_timestamp() ORDER BY not_before, id
                """
            ).map { try $0.decode("id", as: Int64.self) }
            wait = false
        case .ids(let given):
            (ids, wait) = (given, true)
        }
        var outcomes: [ErasureOutcome] = []
        for (index, id) in ids.enumerated() {
            try Task.checkCancellation()
            progress(ErasureProgress(position: index + 1, total: ids.count))
            guard try await claim(id, wait: wait) else { continue }
            do {
                let outcome = try await process(
                    id, policies: runnable.policies, digester: digester, options: options
                ) { run in progress(ErasureProgress(position: index + 1, total: ids.count, run: run)) }
                try await release(id)
                if let outcome {
                    log(outcome)
                    outcomes.append(outcome)
                }
            } catch {
                // The lock goes with the session too; release it here so that a daemon's next sweep can retry.
                try? await release(id)
                throw error
            }
        }
        if selection == .due, outcomes.contains(where: { $0.status == .done }) {
            // On-request policies have no scheduled runs: a sweep that erased someone prunes their bookkeeping.
            for policy in runnable.policies where policy.resolved.policy.rule == .onRequest && policy.state == .active {
                _ = try await pruneBookkeeping(
                    of: try Planner(policy.resolved), version: policy.version,
                    statementTimeout: options.statementTimeout)
            }
        }
        return outcomes
    }

    /// Takes request `id`'s advisory lock; false when another session holds it and `wait` is false.
    func claim(_ id: Int64, wait: Bool) async throws -> Bool {
        let key = Int32(truncatingIfNeeded: id % Int64(Int32.max))
        if wait {
            try await connection.execute(
                "SELECT pg_advisory_lock($1, $2)", [.int32(Self.erasureLockClass), .int32(key)])
            return true
        }
        let row = try await connection.query(
            "SELECT pg_try_advisory_lock($1, $2) AS taken", [.int32(Self.erasureLockClass), .int32(key)]
        ).first
        return try row?.decode("taken", as: Bool.self) ?? false
    }

    func release(_ id: Int64) async throws {
        let key = Int32(truncatingIfNeeded: id % Int64(Int32.max))
        try await connection.execute(
            "SELECT pg_advisory_unlock($1, $2)", [.int32(Self.erasureLockClass), .int32(key)])
    }

    /// One claimed request: nil when no request has the id (reported by the caller as unknown).
    func process(
        _ id: Int64, policies all: [RunPolicy], digester: SubjectDigester, options: RunOptions,
        progress: @escaping @Sendable (RunProgress) -> Void = { _ in }
    ) async throws -> ErasureOutcome? {
        guard let request = try await ErasureQueue.read(id, on: connection) else { return nil }
        let policies = Self.onRequestPolicies(over: request.subjectTable, in: all)
        let digestTable = policies.first?.resolved.subject.table.description ?? request.subjectTable
        guard request.status == .pending, let key = request.subjectKey else {
            return request.outcome(digest: request.subjectDigest ?? "")
        }
        let digest = digester.digest(table: digestTable, key: key)
        guard request.isDue else {
            return request.outcome(digest: digest)
        }

        // The checks, in one snapshot.
        let scoped = policies.map {
            RunPolicy(resolved: $0.resolved, version: $0.version, state: $0.state, requests: .request(key: key))
        }
        let checked = try await connection.transaction(isolation: .repeatableRead, readOnly: true) {
            connection -> (refusal: ErasureRefusal?, erased: (counts: [ErasureOutcome.Count], run: String)?) in
            let asOf = try await Self.transactionStart(on: connection)
            var standings: [PolicyStanding] = []
            for policy in scoped {
                standings.append(
                    try await Self.standing(of: key, under: policy, asOf: asOf, rows: false, on: connection))
            }
            let holds = try await Self.holdsInForce(
                table: request.subjectTable, key: key, policies: scoped.map(\.resolved.name.rawValue),
                on: connection)
            let refusal = Self.refusal(
                table: request.subjectTable, key: key, policies: scoped, standings: standings, holds: holds)
            guard refusal?.kind == .notFound else { return (refusal, nil) }
            // Gone: erased under an on-request policy since the request (by a run whose decision was lost)?
            let erased = try await Self.erasureRecords(digest: digest, since: request.requestedAt, on: connection)
            return (erased == nil ? refusal : nil, erased)
        }
        if let refusal = checked.refusal {
            return try await decide(request, digest: digest, refusal: refusal)
        }
        if let erased = checked.erased {
            return try await decide(request, digest: digest, done: erased)
        }

        var live = options
        live.mode = .live
        live.trigger = "erase"
        live.asOf = nil
        // The run is narrowed to one subject: the blast-radius guard, made for runs over many, would only refuse
        // the erasure of one customer in a table of a handful.
        live.allowLarge = true
        let report: RunReport
        do {
            report = try await liveRun(scoped, options: live, progress: progress)
        } catch let interruption as RunInterruption {
            // The server ended the run (its outcome is recorded): the request stays pending, decided once the
            // server is back.
            throw interruption.cause
        }
        return try await conclude(request, key: key, digest: digest, policies: scoped, run: report.runID)
    }

    /// After the run: done when no on-request policy still finds the subject due, else pending with one more attempt.
    func conclude(
        _ request: ErasureQueue.Request, key: String, digest: String, policies: [RunPolicy], run: String?
    ) async throws -> ErasureOutcome {
        try await connection.transaction { connection in
            let asOf = try await Self.transactionStart(on: connection)
            var due = false
            for policy in policies {
                let standing = try await Self.standing(of: key, under: policy, asOf: asOf, rows: false, on: connection)
                due = due || standing.verdict == .due
            }
            if !due {
                let erased =
                    try await Self.erasureRecords(digest: digest, since: request.requestedAt, on: connection)
                    ?? ([], run ?? "")
                return try await Self.record(
                    request, digest: digest, status: .done, counts: erased.counts, run: erased.run, on: connection)
            }
            let row = try await connection.query(
                """
                UPDATE gallra.erasure_request
                SET attempts = attempts + 1, last_attempt = clock_timestamp()
                WHERE id = $1 AND status = 'pending' RETURNING attempts
                """, [.int64(request.id)]
            ).first
            return ErasureOutcome(
                id: request.id, subjectTable: request.subjectTable, subjectDigest: digest, status: .pending,
                run: run, attempts: try row?.decode("attempts", as: Int.self) ?? request.attempts)
        }
    }

    func decide(_ request: ErasureQueue.Request, digest: String, refusal: ErasureRefusal) async throws
        -> ErasureOutcome
    {
        try await connection.transaction { connection in
            try await Self.record(request, digest: digest, status: .refused, refusal: refusal, on: connection)
        }
    }

    func decide(
        _ request: ErasureQueue.Request, digest: String, done: (counts: [ErasureOutcome.Count], run: String)
    ) async throws -> ErasureOutcome {
        try await connection.transaction { connection in
            try await Self.record(
                request, digest: digest, status: .done, counts: done.counts, run: done.run, on: connection)
        }
    }

    /// Decides a pending request: done or refused, one more attempt, the key replaced by the digest.
    static func record(
        _ request: ErasureQueue.Request, digest: String, status: ErasureOutcome.Status,
        counts: [ErasureOutcome.Count] = [], run: String? = nil, refusal: ErasureRefusal? = nil,
        on connection: isolated PostgresConnection
    ) async throws -> ErasureOutcome {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let countsJSON = String(decoding: try encoder.encode(counts), as: UTF8.self)
        let row = try await connection.query(
            """
            UPDATE gallra.erasure_request
            SET status = $2, decided_at = clock_timestamp(), decided_by = session_user,
                run = $3::uuid, counts = $4::jsonb, refusal = $5, attempts = attempts + 1,
                last_attempt = clock_timestamp(), subject_key = NULL, subject_digest = $6
            WHERE id = $1 AND status = 'pending'
            RETURNING attempts
            """,
            [
                .int64(request.id), .text(status.rawValue), run.flatMap { $0.isEmpty ? nil : .text($0) } ?? .null,
                status == .done ? .jsonb(countsJSON) : .null, refusal.map { .text($0.text) } ?? .null, .text(digest),
            ]
        ).first
        return ErasureOutcome(
            id: request.id, subjectTable: request.subjectTable, subjectDigest: digest, status: status,
            counts: counts, refusal: refusal?.text, refusalKind: refusal?.kind, run: run,
            attempts: try row?.decode("attempts", as: Int.self) ?? request.attempts + 1)
    }

    /// Replaces by their digests the keys of requests decided without gallra (cancelled through SQL).
    func replaceDecidedKeys(policies: [RunPolicy], digester: SubjectDigester) async throws {
        let rows = try await connection.query(
            """
            SELECT id, subject_table, subject_key FROM gallra.erasure_request
            WHERE status <> 'pending' AND subject_key IS NOT NULL ORDER BY id
            """)
        for row in rows {
            let table = try row.decode("subject_table", as: String.self)
            let digestTable =
                Self.onRequestPolicies(over: table, in: policies).first?.resolved.subject.table.description ?? table
            let digest = digester.digest(table: digestTable, key: try row.decode("subject_key", as: String.self))
            try await connection.execute(
                """
                UPDATE gallra.erasure_request SET subject_key = NULL, subject_digest = $2
                WHERE id = $1 AND status <> 'pending'
                """, [.int64(try row.decode("id", as: Int64.self)), .text(digest)])
        }
    }

    /// One journal event per processed request, with its outcome; the subject only as its digest.
    func log(_ outcome: ErasureOutcome) {
        var metadata: Logger.Metadata = [
            "request.id": "\(outcome.id)", "request.status": "\(outcome.status.rawValue)",
            "subject.table": "\(outcome.subjectTable)", "subject.digest": "\(outcome.subjectDigest)",
            "request.attempts": "\(outcome.attempts)",
        ]
        if let run = outcome.run { metadata["run.id"] = "\(run)" }
        if let kind = outcome.refusalKind { metadata["request.refusal"] = "\(kind.rawValue)" }
        let detail: String
        switch outcome.status {
        case .done:
            let rows = outcome.counts.filter { $0.action != "retain" }.reduce(0) { $0 + $1.rows }
            detail = "done, \(rows) rows changed"
        case .refused: detail = "refused: \(outcome.refusal ?? "")"
        case .pending: detail = "still pending after \(outcome.attempts) attempt(s)"
        case .cancelled: detail = "cancelled"
        }
        logger.notice(
            "erasure request \(outcome.id) (\(outcome.subjectTable)): \(detail)",
            metadata: JournalEvent.erasureRequest.metadata(metadata))
    }
}
