import GallraCore
import GallraPolicy
import GallraPostgres
import Logging

/// Replay after a restore (`gallra ledger replay`): the subjects the ledger records after the fork point that the
/// restored database has again are processed again, under the policy version that processed them.
extension Engine {
    /// Key texts read per `FETCH` while a subject table is streamed.
    static let replayFetchSize = 10_000
    /// Digests looked up per statement in the restored audit trail.
    static let replayTrailChunk = 10_000
    /// Keys a dry run shows per policy version.
    public static let replaySampleSize = 5

    /// Finds the subjects of `blocks` that the database has again, and processes them again (or, with `dryRun`,
    /// counts them and shows a few keys).
    ///
    /// Per policy version: the subjects are the blocks' digests that the restored audit trail does not record under
    /// the policy. Each subject table is read once with a cursor, its keys as PostgreSQL prints them digested here
    /// (``SubjectDigester``) and matched against the wanted digests as 32-byte values; only the keys that match are
    /// kept. A live replay then runs the policy versions, in the ledger's order, on the keys found (one run, trigger
    /// `replay`): every batch, lock, legal hold, audit block and guarantee of a live run, but the rule and the
    /// exemptions are not asked (the erasure was due when it was done) and the blast-radius guard does not refuse.
    /// A version the store no longer holds is replaced by the policy's current version, and the report says so; a
    /// policy the store does not hold, or that the catalog refuses, is ``ReplayReport/Outcome/unresolved``.
    ///
    /// - Throws: ``ReplayError`` without an audit key, or with one the ledger's digests were not made with (78), or
    ///   a digest that is not 64 hex digits (65); `PostgresError` for a failing server; ``RunInterruption``.
    public func replay(
        _ blocks: [ReplayBlock], dryRun: Bool, options: RunOptions = RunOptions(mode: .live),
        progress: @escaping @Sendable (RunProgress) -> Void = { _ in }
    ) async throws -> ReplayReport {
        guard let auditKey else { throw ReplayError.missingAuditKey }
        try await Schema.requireCurrent(on: connection)
        let digester = auditKey.digester
        let keyCheck = digester.keyCheck
        if let other = blocks.first(where: { $0.keyCheck != nil && $0.keyCheck != keyCheck }) {
            throw ReplayError(
                "the ledger's block \(other.sequence) names its subjects by digests under another audit key (key "
                    + "check \(other.keyCheck ?? "")) than the one configured (key check \(keyCheck)); configure the "
                    + "audit key the service used (audit.key_file)", exitStatus: .configuration)
        }
        var wanted = try Self.wantedSubjects(blocks)
        try await leaveOutRecorded(&wanted)
        let catalog = try await CatalogReader.read(on: connection)
        let store = PolicyStore(connection: connection)
        for index in wanted.indices {
            try await resolve(&wanted[index], store: store, catalog: catalog)
        }
        let found = try await match(wanted, digester: digester)
        for index in wanted.indices {
            wanted[index].keys = found[index]
        }
        let summary =
            "replay\(dryRun ? " (dry run)" : ""): \(blocks.count) ledger blocks after the fork point, "
            + "\(wanted.reduce(0) { $0 + $1.digests.count }) subjects to process again, "
            + "\(wanted.reduce(0) { $0 + $1.keys.count }) found"
        logger.notice("\(summary)", metadata: ["dry_run": "\(dryRun)", "ledger.blocks": "\(blocks.count)"])

        var reports = wanted.map { $0.report(dryRun: dryRun) }
        var run: RunReport?
        let runnable = wanted.indices.filter { wanted[$0].policy != nil && !wanted[$0].keys.isEmpty }
        if !dryRun, !runnable.isEmpty {
            var live = options
            live.mode = .live
            live.trigger = "replay"
            live.asOf = nil
            // The erasures were done once already, each within the guard's limits then.
            live.allowLarge = true
            let policies = runnable.compactMap { wanted[$0].policy }
            let report = try await liveRun(policies, options: live, progress: progress)
            for (position, index) in runnable.enumerated() {
                let processed = report.policies[position].processed
                reports[index].processed = processed
                reports[index].notProcessed = reports[index].found - processed
            }
            run = report
        }
        let outcome: ReplayReport.Outcome
        if reports.contains(where: { $0.unresolved != nil }) {
            outcome = .unresolved
        } else if reports.contains(where: { ($0.notProcessed ?? 0) > 0 })
            || (run.map { $0.outcome != .done && $0.outcome != .partial } ?? false)
        {
            outcome = .partial
        } else {
            outcome = .done
        }
        return ReplayReport(dryRun: dryRun, blocks: blocks.count, outcome: outcome, policies: reports, run: run)
    }

    /// The subjects wanted per policy version (and digest table text), in the order the ledger first names them;
    /// a digest wanted twice under one policy counts once, under its first version.
    static func wantedSubjects(_ blocks: [ReplayBlock]) throws(ReplayError) -> [ReplayWant] {
        var wants: [ReplayWant] = []
        var position: [ReplayWant.Identity: Int] = [:]
        var seen: [String: Set<SubjectDigestValue>] = [:]
        for block in blocks.sorted(by: { $0.sequence < $1.sequence }) {
            let identity = ReplayWant.Identity(
                policy: block.policy, version: block.policyVersion, subjectTable: block.subjectTable)
            let index: Int
            if let known = position[identity] {
                index = known
            } else {
                index = wants.count
                position[identity] = index
                wants.append(ReplayWant(identity: identity))
            }
            for text in block.digests {
                guard let digest = SubjectDigestValue(hex: text) else {
                    throw ReplayError(
                        "the ledger's block \(block.sequence) has a subject digest that is not 64 hex digits; check "
                            + "the ledger with gallra ledger verify", exitStatus: .dataError)
                }
                wants[index].recorded += 1
                guard seen[block.policy, default: []].insert(digest).inserted else { continue }
                wants[index].digests.insert(digest)
            }
        }
        return wants
    }

    /// Leaves out the digests the restored audit trail records under the same policy: processed before the backup,
    /// or by an earlier replay.
    func leaveOutRecorded(_ wants: inout [ReplayWant]) async throws {
        for index in wants.indices {
            let digests = wants[index].digests.map(\.hex)
            for start in stride(from: 0, to: digests.count, by: Self.replayTrailChunk) {
                let chunk = Array(digests[start..<min(start + Self.replayTrailChunk, digests.count)])
                let rows = try await connection.query(
                    """
                    SELECT DISTINCT s.subject_digest FROM gallra.audit_subject AS s
                    JOIN gallra.audit_block AS b ON b.sequence = s.block
                    WHERE s.subject_digest = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))
                      AND b.policy = $2
                    """, [.jsonb(Self.jsonArray(chunk)), .text(wants[index].identity.policy)])
                for row in rows {
                    if let digest = SubjectDigestValue(hex: try row.decode("subject_digest", as: String.self)),
                        wants[index].digests.remove(digest) != nil
                    {
                        wants[index].inTrail += 1
                    }
                }
            }
        }
    }

    /// The policy version to process `want` under: the recorded one, else the current one (noted); unresolved with
    /// why when the store holds no version of it, or the catalog refuses it.
    func resolve(_ want: inout ReplayWant, store: PolicyStore, catalog: Catalog) async throws {
        let (name, recorded) = (want.identity.policy, want.identity.version)
        guard let policyName = try? PolicyName(name) else {
            want.unresolved = "the ledger names a policy \(name), which is not a policy name"
            return
        }
        var stored = try await store.version(policyName, recorded)
        if stored == nil, let latest = try await store.latest(policyName) {
            want.note =
                "version \(recorded) is not stored in this database; processed under the current version "
                + "\(latest.version)"
            stored = latest
        }
        guard let stored else {
            want.unresolved =
                "policy \(name) is not stored in this database (it was applied after the backup was taken): apply "
                + "its file (gallra policy apply FILE), then replay again"
            return
        }
        let load = store.load([stored])
        guard let policy = load.policies.first else {
            want.unresolved = load.invalid.first?.reason ?? "version \(stored.version) cannot be read"
            return
        }
        let validation = policy.validate(against: catalog)
        guard let resolved = validation.resolved else {
            want.unresolved =
                "version \(stored.version) does not fit this database: "
                + validation.errors.map(\.message).joined(separator: "; ")
            return
        }
        if resolved.subject.table.description != want.identity.subjectTable {
            want.unresolved =
                "version \(stored.version) names subject table \(resolved.subject.table.description), the ledger's "
                + "digests \(want.identity.subjectTable)"
            return
        }
        // The erasure was done under an active version; a later draft or disabled state does not undo it.
        want.policy = RunPolicy(resolved: resolved, version: stored.version, state: .active, replayKeys: [])
    }

    /// Reads each subject table once, with a cursor in a read-only snapshot, and returns per want the keys (as
    /// PostgreSQL prints them) whose digests it wants.
    func match(_ wants: [ReplayWant], digester: SubjectDigester) async throws -> [[String]] {
        var found = Array(repeating: [String](), count: wants.count)
        // One read of each table and key column, for every want over it.
        var groups: [String: (table: ResolvedSubject, wants: [Int])] = [:]
        var order: [String] = []
        for (index, want) in wants.enumerated() {
            guard let subject = want.policy?.resolved.subject, !want.digests.isEmpty else { continue }
            let group = "\(subject.table.description)\u{0}\(subject.key.name)"
            if groups[group] == nil {
                groups[group] = (subject, [])
                order.append(group)
            }
            groups[group]?.wants.append(index)
        }
        for group in order {
            guard let (subject, members) = groups[group] else { continue }
            // Digest → the wants that want it, per digest table text (one text, unless the ledger spells it twice).
            var wantedBy: [String: [SubjectDigestValue: [Int]]] = [:]
            for index in members {
                for digest in wants[index].digests {
                    wantedBy[wants[index].identity.subjectTable, default: [:]][digest, default: []].append(index)
                }
            }
            let lookup = wantedBy
            let table = SQLIdentifier.quoted(schema: subject.table.schema, name: subject.table.name)
            let key = SQLIdentifier.quoted(subject.key.name)
            let fetchSize = Self.replayFetchSize
            let matches = try await connection.transaction(isolation: .repeatableRead, readOnly: true) {
                connection -> [(Int, String)] in
                var matches: [(Int, String)] = []
                try await connection.execute(
                    "DECLARE gallra_replay NO SCROLL CURSOR FOR SELECT s.\(key)::text AS key FROM \(table) AS s")
                while true {
                    let chunk = try await connection.query("FETCH FORWARD \(fetchSize) FROM gallra_replay")
                    for row in chunk {
                        guard case .text(let subjectKey) = row[0] else { continue }
                        for (digestTable, digests) in lookup {
                            if let indices = digests[digester.digestValue(table: digestTable, key: subjectKey)] {
                                for index in indices { matches.append((index, subjectKey)) }
                            }
                        }
                    }
                    if chunk.count < fetchSize { break }
                }
                try await connection.execute("CLOSE gallra_replay")
                return matches
            }
            for (index, subjectKey) in matches { found[index].append(subjectKey) }
        }
        return found
    }
}

/// The subjects one policy version of the ledger wants processed again, and what the database has of them.
struct ReplayWant: Sendable {
    struct Identity: Hashable {
        var policy: String
        var version: Int
        var subjectTable: String
    }

    var identity: Identity
    /// Records in the ledger's blocks (a digest recorded twice counts twice).
    var recorded = 0
    /// Digests to process again: not in the restored trail under the policy.
    var digests: Set<SubjectDigestValue> = []
    /// Digests the restored trail records under the policy.
    var inTrail = 0
    /// The version to run, with state active; nil when unresolved.
    var policy: RunPolicy?
    var note: String?
    var unresolved: String?
    /// Keys of the subjects found, as PostgreSQL prints them.
    var keys: [String] = [] {
        didSet { policy?.replayKeys = keys }
    }

    func report(dryRun: Bool) -> ReplayPolicyReport {
        let sample = keys.sorted { ($0.utf8.count, $0) < ($1.utf8.count, $1) }.prefix(Engine.replaySampleSize)
        return ReplayPolicyReport(
            policy: identity.policy, recordedVersion: identity.version, version: policy?.version,
            note: note ?? unresolved.map { "not processed: \($0)" }, unresolved: unresolved,
            subjectTable: identity.subjectTable, recorded: recorded, inTrail: inTrail, subjects: digests.count,
            found: keys.count, gone: policy == nil ? 0 : digests.count - keys.count,
            sampleKeys: dryRun ? Array(sample) : nil)
    }
}
