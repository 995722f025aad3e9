import GallraCore
import GallraPolicy

/// The SQL that explains one subject's standing under a policy: the parts of the due predicate, each on its own,
/// and the date the rule reads. Built from the same pieces as ``Planner/pickBatch(afterKey:upToKey:)`` and the dry
/// run's counts, so that the explanation says why the run does what it does.
extension Planner {
    /// For the subject in `$keys` (a jsonb array of one key's text), at `$asOf`, one row (none when no row has the
    /// key):
    /// - `rule_holds`: the rule alone holds (never null);
    /// - `processed`: the policy processed the subject before and its row remains (false for a policy that deletes
    ///   the subject row);
    /// - `exempt_0`, `exempt_1`, ...: whether `except[i]` holds (never null);
    /// - `held`: a legal hold in force at `$asOf` stops the policy for the subject (never null);
    /// - `subject_key`: the key as PostgreSQL prints it (as holds and the registry name the subject);
    /// - `date`: the date the rule reads: the subject's column, the latest related row's (or consent row's), or,
    ///   for `consent: gallra`, the latest event's `recorded_at`; null when unknown;
    /// - `expires_at`: `date` plus the period (the instant the subject expires from; the rule holds once the date
    ///   is older than `$asOf` minus the period);
    /// - `related_rows`, `null_dates`: for a rule on a related table, its rows reached from the subject and how
    ///   many of them have a null date (a null date keeps the subject); null otherwise;
    /// - `event`: for `consent: gallra`, the latest event under the policy (`granted` or `revoked`), else null.
    public func explainSubject() -> PlannedStatement {
        var sql = SQLBuilder()
        let member = member(&sql, .batch, key: key("s"))
        var columns = ["coalesce((\(rule(&sql, alias: "s"))), false) AS rule_holds"]
        if let processed = notProcessed(&sql, alias: "s") {
            columns.append("NOT \(processed) AS processed")
        } else {
            columns.append("false AS processed")
        }
        for (index, exemption) in exemptions(&sql, alias: "s").enumerated() {
            columns.append("coalesce((\(exemption)), false) AS exempt_\(index)")
        }
        columns.append("\(held(&sql, alias: "s")) AS held")
        columns.append("\(key("s"))::text AS subject_key")
        let period = "\(sql.bind(.interval(resolved.rule.period.postgresInterval)))::interval"
        let rule = resolved.rule
        let column = SQLIdentifier.quoted(rule.column.name)
        let date: String
        if resolved.policy.rule == .onRequest {
            // The date is the due request's not_before; the period is zero.
            let table = SQLIdentifier.quoted(schema: "gallra", name: "erasure_request")
            date = """
                (SELECT q.not_before FROM \(table) AS q \
                WHERE q.subject_table = \(sql.bind(.text(resolved.policy.subject.table.description))) \
                AND q.subject_key = \(key("s"))::text AND q.status = 'pending')
                """
            columns += [
                "\(date) AS date", "NULL::text AS event", "NULL::bigint AS related_rows", "NULL::bigint AS null_dates",
            ]
        } else if case .consentRevoked(_, .gallra) = resolved.policy.rule {
            let table = SQLIdentifier.quoted(schema: "gallra", name: "consent_event")
            let latest = """
                FROM \(table) AS e WHERE e.subject_table = \(sql.bind(.text(resolved.policy.subject.table.description))) \
                AND e.subject_key = \(key("s"))::text AND e.policy = \(sql.bind(.policyName)) \
                ORDER BY e.ordinal DESC LIMIT 1
                """
            date = "(SELECT e.recorded_at \(latest))"
            columns += [
                "\(date) AS date", "(SELECT e.event \(latest)) AS event", "NULL::bigint AS related_rows",
                "NULL::bigint AS null_dates",
            ]
        } else if rule.path.isEmpty {
            date = "s.\(column)::timestamptz"
            columns += [
                "\(date) AS date", "NULL::text AS event", "NULL::bigint AS related_rows", "NULL::bigint AS null_dates",
            ]
        } else {
            let path = SQLPath(rule.path, from: "s", prefix: "r")
            let related = "FROM \(path.from) WHERE \(path.conditions(and: []))"
            date = "(SELECT max(\(path.last).\(column))::timestamptz \(related))"
            columns += [
                "\(date) AS date", "NULL::text AS event", "(SELECT count(*) \(related)) AS related_rows",
                "(SELECT count(*) FILTER (WHERE \(path.last).\(column) IS NULL) \(related)) AS null_dates",
            ]
        }
        columns.append("\(date) + \(period) AS expires_at")
        let text = """
            SELECT \(columns.joined(separator: ",\n  "))
            FROM \(subjectTable) AS s
            WHERE \(member)
            """
        return sql.statement(text)
    }

    /// The consent events a live run would remove from gallra's registry for the subject in `$keys` when it is due
    /// (under every policy, in every spelling of the subject table, as ``countConsentEvents()`` counts them).
    /// Returns `events`.
    public func subjectConsentEvents() -> PlannedStatement {
        var sql = SQLBuilder()
        let member = member(&sql, .batch, key: key("s"))
        let due = due(&sql, alias: "s")
        let keys = "SELECT \(key("s"))::text FROM \(subjectTable) AS s WHERE \(member) AND \(due)"
        let text = countConsentEvents(&sql, keys: keys)
        return sql.statement(text)
    }
}
