import GallraPolicy
import GallraPostgres

/// What stops an erasure request before anything is erased: no on-request policy, a legal hold, no such subject,
/// an exemption. The same checks serve the live processing and `gallra erase --dry-run`, so that the dry run meets
/// the refusal the live command would.
extension Engine {
    /// The active on-request policies over `table` (as the policies or the catalog name it), the one that deletes
    /// the subject row last: the policies that keep it act first, while the row is still there to reach their data.
    static func onRequestPolicies(over table: String, in policies: [RunPolicy]) -> [RunPolicy] {
        let mine = policies.filter {
            $0.state == .active && $0.resolved.policy.rule == .onRequest
                && ($0.resolved.policy.subject.table.description == table
                    || $0.resolved.subject.table.description == table)
        }
        let deletes = mine.filter { Self.deletesSubjectRow($0.resolved) }
        let keeps = mine.filter { !Self.deletesSubjectRow($0.resolved) }
        return keeps.sorted { $0.resolved.name < $1.resolved.name }
            + deletes.sorted { $0.resolved.name < $1.resolved.name }
    }

    /// The transaction's instant (`now()`), the one its checks are made at.
    static func transactionStart(on connection: isolated PostgresConnection) async throws -> PostgresTimestamp {
        guard let row = try await connection.query("SELECT now() AS now").first else {
            throw PostgresError(.decoding, "SELECT now() returned no row")
        }
        return try row.decode("now", as: PostgresTimestamp.self)
    }

    static func deletesSubjectRow(_ resolved: ResolvedPolicy) -> Bool {
        resolved.steps.contains { $0.relation == .subject && $0.action.mayDelete }
    }

    /// The legal holds in force on the subject that stop one of `policies`: not released, `until` not passed, on
    /// every policy or on one of these. Each as `hold ID (REASON)`.
    static func holdsInForce(
        table: String, key: String, policies: [String], on connection: PostgresConnection
    ) async throws -> [String] {
        var seen: Set<Int64> = []
        var holds: [String] = []
        for policy in policies {
            for hold in try await Holds.inForce(
                subjectTable: table, subjectKey: key, policy: policy, asOf: nil, on: connection)
            where seen.insert(hold.id).inserted {
                holds.append("hold \(hold.id) (\(hold.reason))")
            }
        }
        return holds
    }

    /// Why the request for subject `key` of `table` is refused, or nil when it can go ahead. `standings` are the
    /// subject's standings under `policies` (`Engine.standing`), read in the caller's snapshot.
    static func refusal(
        table: String, key: String, policies: [RunPolicy], standings: [PolicyStanding], holds: [String]
    ) -> ErasureRefusal? {
        guard !policies.isEmpty else {
            return ErasureRefusal(
                kind: .noPolicy,
                text:
                    "no active on-request policy covers \(table): add a policy over it with expires: on_request (docs/requests.md), apply it, and request again"
            )
        }
        if !holds.isEmpty {
            return ErasureRefusal(
                kind: .held, text: "legal hold in force: \(holds.joined(separator: ", ")); release it to erase")
        }
        if standings.allSatisfy({ $0.verdict == .noSubject }) {
            return ErasureRefusal(kind: .notFound, text: "no row of \(table) has the requested key")
        }
        for standing in standings where standing.verdict == .exempt || !standing.exemptions.isEmpty {
            let which = standing.exemptions.map { "except[\($0.index)] (\($0.condition))" }
            return ErasureRefusal(
                kind: .exempt,
                text:
                    "exemption of policy \(standing.policy) keeps the subject: \(which.joined(separator: ", "))")
        }
        return nil
    }

    /// The kind of a refusal recorded in the queue, from the text ``refusal(table:key:policies:standings:holds:)``
    /// wrote.
    static func refusalKind(_ text: String?) -> ErasureOutcome.Refusal? {
        guard let text else { return nil }
        if text.hasPrefix("legal hold") { return .held }
        if text.hasPrefix("exemption") { return .exempt }
        if text.hasPrefix("no row") { return .notFound }
        return .noPolicy
    }

    /// The subject's audit records under on-request policies since `since`: the rows per table and action, summed,
    /// and the latest run among them; nil when there is none (the subject was not erased on request since then).
    static func erasureRecords(
        digest: String, since: PostgresTimestamp, on connection: PostgresConnection
    ) async throws -> (counts: [ErasureOutcome.Count], run: String)? {
        func records(_ more: String = "") -> String {
            """
            FROM gallra.audit_subject AS s
            JOIN gallra.audit_block AS b ON b.sequence = s.block
            JOIN gallra.policy AS p ON p.name = b.policy AND p.version = b.policy_version\(more)
            WHERE s.subject_digest = $1 AND b.created_at >= $2 AND p.definition->'expires' = '"on_request"'::jsonb
            """
        }
        guard
            let latest = try await connection.query(
                "SELECT b.run::text AS run \(records()) ORDER BY b.sequence DESC LIMIT 1",
                [.text(digest), .timestamptz(since)]
            ).first
        else { return nil }
        let rows = try await connection.query(
            """
            SELECT c->>'table' AS "table", c->>'action' AS action, sum((c->>'rows')::bigint)::bigint AS rows
            \(records("\nCROSS JOIN jsonb_array_elements(s.counts) AS c"))
            GROUP BY 1, 2 ORDER BY 1, 2
            """, [.text(digest), .timestamptz(since)])
        let counts = try rows.map { row in
            let action = try row.decode("action", as: String.self)
            return ErasureOutcome.Count(
                table: try row.decode("table", as: String.self), action: Self.requestAction(action),
                rows: try row.decode("rows", as: Int.self))
        }
        return (counts.filter { $0.rows > 0 }, try latest.decode("run", as: String.self))
    }

    /// `deleted` → `delete`, as the queue's counts name actions.
    static func requestAction(_ audited: String) -> String {
        switch audited {
        case "deleted": "delete"
        case "anonymized": "anonymize"
        case "retained": "retain"
        default: audited
        }
    }
}
