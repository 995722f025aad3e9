#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore
import GallraPolicy

/// Turns a resolved policy into the SQL of a run: which subjects are due, and what each data point's step does
/// to exactly the subjects of one batch (or, for a dry run, to all due subjects at once).
///
/// Pure: no connection, no clock. Identifiers are always double-quoted (`SQLIdentifier.quoted`); every
/// value (the instant, the period, subject keys, exemption and anonymization values, the hash secret) is a
/// bound parameter described by a ``PlanParameter`` that the executor fills in. Type names come from the
/// catalog (`format_type`) and are checked against a strict pattern before they are spliced into casts.
///
/// Semantics fixed here (and in docs/policy-language.md):
/// - A null activity, creation or event value never expires (a subject without a known date is kept).
/// - `inactive_for` on the latest row of a related table expires a subject only when it has at least one
///   such row and every one of them is older than the period; a subject without a related row, or with a
///   related row whose column is null, does not expire.
/// - `consent_revoked` expires a subject when some consent row was revoked before the grace period and no
///   consent row is still in force (revoked_at null, or revoked later). With `consent: gallra` it expires a
///   subject whose latest event in `gallra.consent_event` for the policy is a revocation recorded at or before
///   the grace period's start; a subject the registry does not name is kept.
/// - Exemptions: `is true|false|null` are SQL `IS TRUE|FALSE|NULL`; `equals` never matches a null column
///   (`equals: null` means `is: null`); `in` matches a null column only when the list holds `null`;
///   `not_in` never exempts a null column. A subject is due when the rule holds, no exemption holds and (for a
///   policy that keeps the subject row) the policy has not processed it before.
public struct Planner: Sendable {
    /// The plan's policy.
    public let resolved: ResolvedPolicy
    /// `"schema"."table"` of the subject table.
    let subjectTable: String
    /// `"key"`.
    let keyColumn: String
    /// For an `on_request` policy, which subjects its rule holds for; ignored by the other rules.
    public var requests: ErasureScope = .due
    /// A replay after a restore (`gallra ledger replay`): the subjects whose keys `$replayKeys` holds stand in for the
    /// rule and the exemptions (their erasure was due when it was first done); legal holds and `gallra.processed`
    /// still apply.
    public var replaying = false

    /// A planner for `resolved` (`requests` scopes an `on_request` rule, `replaying` replaces the rule by the replay's
    /// keys); fails when a name or a type name cannot be used in SQL.
    public init(_ resolved: ResolvedPolicy, requests: ErasureScope = .due, replaying: Bool = false) throws(PlanError) {
        self.resolved = resolved
        self.requests = requests
        self.replaying = replaying
        try SQLText.checkTypeName(resolved.subject.keyType)
        for name in Self.names(in: resolved) { try SQLText.checkIdentifier(name) }
        for step in resolved.steps {
            for column in step.action.columns { try SQLText.checkTypeName(column.type) }
            if step.identifyRowsBefore != nil, step.relation != .referenced {
                throw .identifiedBeforeUnsupported(dataPoint: step.dataPoint, table: step.table.description)
            }
            if step.relation == .referenced, step.path.last.map({ $0.direction != .parent }) ?? true {
                throw .referencedNotAtPathEnd(dataPoint: step.dataPoint, table: step.table.description)
            }
        }
        subjectTable = SQLIdentifier.quoted(schema: resolved.subject.table.schema, name: resolved.subject.table.name)
        keyColumn = SQLIdentifier.quoted(resolved.subject.key.name)
    }

    static func names(in resolved: ResolvedPolicy) -> [String] {
        var names: [String] = []
        func add(_ table: QualifiedName) {
            names.append(table.name)
            if let schema = table.schema { names.append(schema) }
        }
        func add(_ path: [JoinHop]) {
            for hop in path {
                add(hop.from)
                add(hop.to)
                names += hop.fromColumns.map(\.name) + hop.toColumns.map(\.name)
            }
        }
        add(resolved.subject.table)
        names.append(resolved.subject.key.name)
        add(resolved.rule.table)
        names.append(resolved.rule.column.name)
        add(resolved.rule.path)
        for exemption in resolved.exemptions {
            add(exemption.table)
            add(exemption.path)
            switch exemption.exemption {
            case .column(let column, _): names.append(column.name)
            case .relatedExists(_, _, _, let conditions): names += conditions.map(\.column.name)
            }
        }
        for step in resolved.steps {
            add(step.table)
            add(step.path)
            names += step.action.columns.map(\.column.name)
            for reference in step.referencedBy {
                add(reference.table)
                names += reference.columns.map(\.name) + reference.referencedColumns.map(\.name)
            }
        }
        return names
    }

    /// Whether the policy deletes the subject row: otherwise processed subjects are remembered in
    /// `gallra.processed` and excluded from later runs of the policy (convergence).
    public var deletesSubjectRow: Bool {
        resolved.steps.contains { $0.relation == .subject && $0.action == .delete }
    }

    /// Whether the policy may delete the subject row: a delete, or a delete-or-anonymize that deletes it when
    /// nothing references it any more. Such a subject is locked `FOR UPDATE`.
    public var mayDeleteSubjectRow: Bool {
        resolved.steps.contains { $0.relation == .subject && $0.action.mayDelete }
    }

    // MARK: - Which subjects are due

    /// The subject key of `alias` as SQL.
    func key(_ alias: String) -> String { "\(alias).\(keyColumn)" }

    /// `$asOf - $period`: the instant before which a date has expired.
    func cutoff(_ sql: inout SQLBuilder) -> String {
        "(\(sql.bind(.asOf))::timestamptz - \(sql.bind(.interval(resolved.rule.period.postgresInterval)))::interval)"
    }

    /// The rule alone, for the subject row `alias`.
    func rule(_ sql: inout SQLBuilder, alias: String) -> String {
        let rule = resolved.rule
        if replaying { return replayRule(&sql, alias: alias) }
        if resolved.policy.rule == .onRequest { return requestRule(&sql, alias: alias) }
        let column = SQLIdentifier.quoted(rule.column.name)
        let cutoff = cutoff(&sql)
        if case .consentRevoked(_, .gallra) = resolved.policy.rule {
            return registryRule(&sql, alias: alias, cutoff: cutoff)
        }
        guard !rule.path.isEmpty else {
            // A null date compares as null: it never expires.
            return "\(alias).\(column) < \(cutoff)"
        }
        // The latest related row (inactive_for) and consent rows (consent_revoked) read alike: some row is
        // older than the cutoff, and none is newer or unknown.
        let old = SQLPath(rule.path, from: alias, prefix: "r")
        let young = SQLPath(rule.path, from: alias, prefix: "q")
        return """
            (EXISTS (SELECT FROM \(old.from) WHERE \(old.conditions(and: ["\(old.last).\(column) < \(cutoff)"]))) \
            AND NOT EXISTS (SELECT FROM \(young.from) WHERE \(young.conditions(and: ["(\(young.last).\(column) >= \(cutoff) OR \(young.last).\(column) IS NULL)"]))))
            """
    }

    /// `consent: gallra`: the subject's latest event under this policy in gallra's consent registry is a revocation
    /// recorded at or before the cutoff. A subject without events, or whose latest event is a grant, is kept.
    ///
    /// The subject is named as the registry stores it: the subject table as the policy's canonical definition
    /// writes it, and the key as PostgreSQL prints it (`::text`). Equality on those and the policy, and the
    /// descending `ordinal`, are the unique index `consent_event_one_history`: one backward index probe per subject.
    func registryRule(_ sql: inout SQLBuilder, alias: String, cutoff: String) -> String {
        let table = SQLIdentifier.quoted(schema: "gallra", name: "consent_event")
        func column(_ name: String) -> String { "e.\(SQLIdentifier.quoted(name))" }
        let subjectTable = sql.bind(.text(resolved.policy.subject.table.description))
        let policy = sql.bind(.policyName)
        return """
            (SELECT \(column("event")) = 'revoked' AND \(column("recorded_at")) <= \(cutoff) \
            FROM \(table) AS e \
            WHERE \(column("subject_table")) = \(subjectTable) AND \(column("subject_key")) = \(key(alias))::text \
            AND \(column("policy")) = \(policy) \
            ORDER BY \(column("ordinal")) DESC LIMIT 1) IS TRUE
            """
    }

    /// `on_request`: a pending request for the subject is due (`not_before` at or before `$asOf`), narrowed or widened
    /// by ``requests``.
    ///
    /// The subject is named as the queue stores it: the subject table as the policy's canonical definition writes it
    /// and the key as PostgreSQL prints it (`::text`). Equality on both, with `status = 'pending'`, is the unique
    /// partial index `erasure_request_one_pending`: one index probe per subject.
    func requestRule(_ sql: inout SQLBuilder, alias: String) -> String {
        let table = SQLIdentifier.quoted(schema: "gallra", name: "erasure_request")
        let subjectTable = sql.bind(.text(resolved.policy.subject.table.description))
        let pending = """
            EXISTS (SELECT FROM \(table) AS q \
            WHERE q.subject_table = \(subjectTable) AND q.subject_key = \(key(alias))::text \
            AND q.status = 'pending' AND q.not_before <= \(sql.bind(.asOf))::timestamptz)
            """
        switch requests {
        case .due:
            return pending
        case .request(let subjectKey):
            return "(\(key(alias))::text = \(sql.bind(.text(subjectKey))) AND \(pending))"
        case .assumed(let subjectKey):
            return "(\(key(alias))::text = \(sql.bind(.text(subjectKey))) OR \(pending))"
        }
    }

    /// A replay: the subject's key is one of `$replayKeys` (an array literal of key texts), compared in the key's own
    /// type so that the key index serves it.
    func replayRule(_ sql: inout SQLBuilder, alias: String) -> String {
        "\(key(alias)) = ANY (\(sql.bind(.replayKeys))::\(resolved.subject.keyType)[])"
    }

    /// Whether some exemption holds for `alias` (never null), or nil when the policy has none (or replays).
    func exempt(_ sql: inout SQLBuilder, alias: String) -> String? {
        guard !resolved.exemptions.isEmpty, !replaying else { return nil }
        let parts = exemptions(&sql, alias: alias)
        return "coalesce(" + parts.map { "(\($0))" }.joined(separator: " OR ") + ", false)"
    }

    /// Each exemption's condition for `alias`, in the order written (each may be null).
    func exemptions(_ sql: inout SQLBuilder, alias: String) -> [String] {
        resolved.exemptions.enumerated().map { index, exemption -> String in
            switch exemption.exemption {
            case .column(let column, let predicate):
                return predicateSQL(
                    &sql, predicate, column: column, alias: alias, table: exemption.table)
            case .relatedExists(_, _, _, let conditions):
                let path = SQLPath(exemption.path, from: alias, prefix: "x\(index)_")
                let checks = conditions.map {
                    predicateSQL(&sql, $0.predicate, column: $0.column, alias: path.last, table: exemption.table)
                }
                return "EXISTS (SELECT FROM \(path.from) WHERE \(path.conditions(and: checks)))"
            }
        }
    }

    /// One exemption condition on `alias`.`column` of `table`; values are bound and typed through the table's row type.
    func predicateSQL(
        _ sql: inout SQLBuilder, _ predicate: Exemption.Predicate, column: ColumnName, alias: String,
        table: QualifiedName
    ) -> String {
        let target = "\(alias).\(SQLIdentifier.quoted(column.name))"
        let rowType = SQLIdentifier.quoted(schema: table.schema, name: table.name)
        let name = SQLIdentifier.quoted(column.name)
        func list(_ values: [Scalar]) -> String {
            let json = SQLText.recordsJSON(column: column.name, values: values.filter { $0 != .null })
            return
                "SELECT v.\(name) FROM jsonb_populate_recordset(NULL::\(rowType), \(sql.bind(.json(json)))::jsonb) AS v"
        }
        switch predicate {
        case .is(.true): return "\(target) IS TRUE"
        case .is(.false): return "\(target) IS FALSE"
        case .is(.null), .equals(.null): return "\(target) IS NULL"
        case .equals(let value):
            return "coalesce(\(target) IN (\(list([value]))), false)"
        case .in(let values):
            let nulls = values.contains(.null) ? " OR \(target) IS NULL" : ""
            return "(coalesce(\(target) IN (\(list(values))), false)\(nulls))"
        case .notIn(let values):
            return "(\(target) IS NOT NULL AND \(target) NOT IN (\(list(values))))"
        }
    }

    /// Subjects this policy has already processed (their row remains) are not due again.
    ///
    /// For a count over the whole subject table (`overAll`) an anti-join, which the server hashes once. Otherwise,
    /// where subjects are looked at a batch or a row at a time, a scalar subquery: one primary-key probe per subject,
    /// whatever the statistics of `gallra.processed` say. (As an anti-join, with the statistics of the table still
    /// empty while a first run fills it, the server compared each subject with every processed key: each batch
    /// slower than the one before.) `IS NOT TRUE` rather than `IS NULL`: the server guesses that half the subjects
    /// pass it, not one in two hundred, so a batch still walks the key index and stops at its limit instead of
    /// sorting every due subject.
    func notProcessed(_ sql: inout SQLBuilder, alias: String, overAll: Bool = false) -> String? {
        guard !deletesSubjectRow else { return nil }
        let match = "p.policy = \(sql.bind(.policyName)) AND p.subject_key = \(key(alias))::text"
        return overAll
            ? "NOT EXISTS (SELECT FROM gallra.processed AS p WHERE \(match))"
            : "(SELECT true FROM gallra.processed AS p WHERE \(match)) IS NOT TRUE"
    }

    /// A legal hold in force at `$asOf` stops this policy for subject `alias` (never null): a row of `gallra.hold`
    /// for the subject (its table as the audit digests name it, its key as PostgreSQL prints it), not released,
    /// whose `until` is unset or after `$asOf` (an expired hold releases by itself), for every policy or this one.
    ///
    /// One probe of the partial index `hold_in_force` per subject. The key is compared in the column's collation
    /// (`"C"`), whatever the key column's own.
    func held(_ sql: inout SQLBuilder, alias: String) -> String {
        "(\(holdLookup(&sql, alias: alias))) IS TRUE"
    }

    /// ``held(_:alias:)`` negated, as a part of the due predicate. Where subjects are looked at a batch or a row at
    /// a time, a scalar subquery: one index probe per subject, whatever the statistics of `gallra.hold` say. For a
    /// count over every subject (`overAll`), an anti-join, which the server may hash once, as for
    /// ``notProcessed(_:alias:overAll:)``.
    func notHeld(_ sql: inout SQLBuilder, alias: String, overAll: Bool = false) -> String {
        guard overAll else { return "(\(holdLookup(&sql, alias: alias))) IS NOT TRUE" }
        return "NOT EXISTS (\(holdLookup(&sql, alias: alias, select: "SELECT FROM", limit: false)))"
    }

    /// A query of the holds in force over subject `alias`: `SELECT true ... LIMIT 1` for a scalar subquery.
    func holdLookup(
        _ sql: inout SQLBuilder, alias: String, select: String = "SELECT true FROM", limit: Bool = true
    ) -> String {
        let table = sql.bind(.text(resolved.subject.table.description))
        let asOf = sql.bind(.asOf)
        let policy = sql.bind(.policyName)
        return """
            \(select) gallra.hold AS h \
            WHERE h.subject_table = \(table) AND h.subject_key = (\(key(alias))::text COLLATE "C") \
            AND h.released_at IS NULL AND (h.until IS NULL OR h.until > \(asOf)::timestamptz) \
            AND (h.policy IS NULL OR h.policy = \(policy))\(limit ? " LIMIT 1" : "")
            """
    }

    /// Due: the rule holds, not processed before, no exemption holds and no legal hold is in force. `exempted`
    /// flips the exemption; without `rule`, the rule is left out (the caller's keys already satisfy it).
    func due(_ sql: inout SQLBuilder, alias: String, exempted: Bool = false, rule withRule: Bool = true) -> String {
        var parts = withRule ? [rule(&sql, alias: alias)] : []
        if let processed = notProcessed(&sql, alias: alias) { parts.append(processed) }
        if let exempt = exempt(&sql, alias: alias) {
            parts.append(exempted ? exempt : "NOT \(exempt)")
        } else if exempted {
            parts.append("false")
        }
        parts.append(notHeld(&sql, alias: alias))
        return parts.joined(separator: "\n  AND ")
    }

    /// Counts the subjects the rule holds for and the policy has not processed, at `$asOf`, in three disjoint
    /// parts: the due ones (`expiring`), those an exemption keeps (`exempted`), and those a legal hold alone keeps
    /// (`held`: due but for the hold).
    public func countSubjects() -> PlannedStatement {
        var sql = SQLBuilder()
        var rulePart = [rule(&sql, alias: "s")]
        if let processed = notProcessed(&sql, alias: "s", overAll: true) { rulePart.append(processed) }
        let exempt = exempt(&sql, alias: "s") ?? "false"
        let held = held(&sql, alias: "s")
        let text = """
            SELECT count(*) FILTER (WHERE NOT x.exempted AND NOT x.held) AS expiring,
                   count(*) FILTER (WHERE x.exempted) AS exempted,
                   count(*) FILTER (WHERE NOT x.exempted AND x.held) AS held
            FROM (SELECT \(exempt) AS exempted, \(held) AS held
                  FROM \(subjectTable) AS s
                  WHERE \(rulePart.joined(separator: "\n    AND "))) AS x
            """
        return sql.statement(text)
    }

    /// One subject's standing at `$asOf` (for a register extract): whether the rule holds for it, an exemption keeps
    /// it, a legal hold keeps it, and the policy has processed it already (its row stays). No row when no subject
    /// has the key.
    public func subjectStanding(key subjectKey: String) throws(PlanError) -> PlannedStatement {
        try SQLText.checkTypeName(resolved.subject.keyType)
        var sql = SQLBuilder()
        let holds = rule(&sql, alias: "s")
        let processed = notProcessed(&sql, alias: "s", overAll: true).map { "NOT (\($0))" } ?? "false"
        let exempt = exempt(&sql, alias: "s") ?? "false"
        let held = held(&sql, alias: "s")
        let keyValue = sql.bind(.text(subjectKey))
        let text = """
            SELECT coalesce((\(holds)), false) AS rule_holds, coalesce((\(exempt)), false) AS exempted,
                   \(processed) AS processed, \(held) AS held
            FROM \(subjectTable) AS s
            WHERE \(key("s")) = \(keyValue)::\(resolved.subject.keyType)
            """
        return sql.statement(text)
    }

    /// The subject table's size for the `max_fraction` guard: `count(*)` (exact) for small or never analyzed tables.
    public func countTable() -> PlannedStatement {
        PlannedStatement(sql: "SELECT count(*) AS rows FROM \(subjectTable)", parameters: [])
    }

    /// The next batch: up to `$limit` due subjects after `$afterKey` (and, for a retry, up to `$upToKey`) in key
    /// order, locked, skipping rows another transaction holds (they are left for a later run). Returns `key` as
    /// text.
    ///
    /// A subject the policy deletes is locked `FOR UPDATE`, which also holds off a row being inserted that
    /// references it (an order placed meanwhile fails its foreign key check after the batch, instead of being
    /// left behind). A subject whose row remains is locked `FOR NO KEY UPDATE`: a returning customer's update
    /// still waits for the batch, but inserts that only reference the row do not.
    public func pickBatch(afterKey: Bool, upToKey: Bool = false) -> PlannedStatement {
        var sql = SQLBuilder()
        let due = due(&sql, alias: "s")
        var after = afterKey ? "\n  AND \(key("s")) > \(sql.bind(.afterKey))::text::\(resolved.subject.keyType)" : ""
        if upToKey { after += "\n  AND \(key("s")) <= \(sql.bind(.upToKey))::text::\(resolved.subject.keyType)" }
        let text = """
            SELECT \(key("s"))::text AS key
            FROM \(subjectTable) AS s
            WHERE \(due)\(after)
            ORDER BY \(key("s"))
            LIMIT \(sql.bind(.limit))
            \(mayDeleteSubjectRow ? "FOR UPDATE" : "FOR NO KEY UPDATE") OF s SKIP LOCKED
            """
        return sql.statement(text)
    }

    /// Of the batch's locked subjects, those still due on a fresh snapshot (taken after the locks were
    /// granted): a subject another run processed meanwhile drops out. Returns `key` as text, in key order.
    public func confirmBatch() -> PlannedStatement {
        var sql = SQLBuilder()
        let member = member(&sql, .batch, key: key("s"))
        // A replay's batch was picked from its keys, which do not change: checking them again would compare each
        // subject of the batch with every key of the replay.
        let due = due(&sql, alias: "s", rule: !replaying)
        let text = """
            SELECT \(key("s"))::text AS key
            FROM \(subjectTable) AS s
            WHERE \(member)
              AND \(due)
            ORDER BY \(key("s"))
            """
        return sql.statement(text)
    }

    /// The first `$limit` due subjects' keys, for a dry run's `--show-keys`.
    public func firstKeys() -> PlannedStatement {
        var sql = SQLBuilder()
        let due = due(&sql, alias: "s")
        let text = """
            SELECT \(key("s"))::text AS key FROM \(subjectTable) AS s
            WHERE \(due)
            ORDER BY \(key("s")) LIMIT \(sql.bind(.limit))
            """
        return sql.statement(text)
    }

    /// The consent events a live run would remove from gallra's registry: those of the first `$limit` due subjects
    /// in key order (the subjects a run capped at `$limit` processes), under every policy and in every spelling of
    /// the subject table a stored policy uses, as `gallra.erase_consent` finds them. Returns `events`.
    public func countConsentEvents() -> PlannedStatement {
        var sql = SQLBuilder()
        let due = due(&sql, alias: "s")
        let keys = """
            SELECT \(key("s"))::text FROM \(subjectTable) AS s
            WHERE \(due)
            ORDER BY \(key("s")) LIMIT \(sql.bind(.limit))
            """
        let text = countConsentEvents(&sql, keys: keys)
        return sql.statement(text)
    }

    /// `SELECT count(*) AS events` of the consent events whose key `keys` (a query of key texts) returns, under
    /// every policy and in every spelling of the subject table a stored policy uses, as `gallra.erase_consent`
    /// finds them.
    func countConsentEvents(_ sql: inout SQLBuilder, keys: String) -> String {
        let table = sql.bind(.text(resolved.subject.table.description))
        return """
            SELECT count(*) AS events FROM gallra.consent_event AS e
            WHERE e.subject_table IN (
                SELECT \(table)::text
                UNION
                SELECT p.definition->'subject'->>'table' FROM gallra.policy AS p
                WHERE parse_ident(p.definition->'subject'->>'table') = parse_ident(\(table)::text))
              AND e.subject_key IN (\(keys))
            """
    }

    /// Which subjects a step acts for: the batch's keys (bound as one array literal of their texts), or every due
    /// subject.
    public enum SubjectSet: Sendable, Hashable {
        case batch
        case due
    }

    /// Whether `key` (a subject key expression) belongs to `set`.
    func member(_ sql: inout SQLBuilder, _ set: SubjectSet, key keyExpression: String) -> String {
        switch set {
        case .batch:
            return "\(keyExpression) = ANY (\(batchKeys(&sql)))"
        case .due:
            // Correlated, so that checking one row costs one key lookup, not a scan of every due subject.
            return
                "EXISTS (SELECT FROM \(subjectTable) AS e WHERE \(key("e")) = \(keyExpression) AND \(due(&sql, alias: "e")))"
        }
    }

    /// The batch's keys as an array of the key's type (`$keys` is their array literal, read by the type's input).
    func batchKeys(_ sql: inout SQLBuilder) -> String {
        "\(sql.bind(.keys))::\(resolved.subject.keyType)[]"
    }

    /// Whether the subject-table row `alias` belongs to `set` (never null): for the due subjects, the due
    /// predicate on the row itself, with no second lookup of the row by its key.
    func isMember(_ sql: inout SQLBuilder, _ set: SubjectSet, alias: String) -> String {
        switch set {
        case .batch: member(&sql, .batch, key: key(alias))
        case .due: "coalesce((\(due(&sql, alias: alias))), false)"
        }
    }
}

/// Which subjects an `on_request` policy's rule holds for.
public enum ErasureScope: Sendable, Hashable {
    /// Every subject with a due pending request (a scheduled or triggered run).
    case due
    /// Only the subject with this key (its text), while its request is pending and due: the processing of one
    /// request.
    case request(key: String)
    /// This subject as if its request were due, and every subject with a due pending request: what `gallra erase
    /// --dry-run` shows.
    case assumed(key: String)
}

/// A value the executor binds to a planned statement.
public enum PlanParameter: Sendable, Hashable {
    /// The run's instant (`timestamptz`).
    case asOf
    /// The batch's subject keys: an array literal of their texts (``PostgresArrayLiteral``), bound as `text`.
    case keys
    /// The last key of the previous batch, as text.
    case afterKey
    /// The last key a batch picked at its first attempt, as text: its retries pick within the same range.
    case upToKey
    /// A row limit (`bigint`).
    case limit
    /// The policy's hash secret (text, hex), derived from the audit key.
    case salt
    /// The policy's name (text).
    case policyName
    /// The live run's id (text, a UUID).
    case runID
    /// Captured rows to act on: a jsonb array of objects keyed by column name.
    case rows
    /// A replay's subject keys: an array literal of their texts, bound as `text` (``Planner/replaying``).
    case replayKeys
    /// A constant interval.
    case interval(String)
    /// A constant jsonb document.
    case json(String)
    /// A constant text, or null.
    case text(String?)
}

/// SQL text and the parameters `$1`, `$2`, ... in order.
public struct PlannedStatement: Sendable, Hashable {
    public var sql: String
    public var parameters: [PlanParameter]
}

/// Collects bound parameters while SQL text is written; equal parameters share one placeholder.
struct SQLBuilder {
    var parameters: [PlanParameter] = []

    mutating func bind(_ parameter: PlanParameter) -> String {
        if let index = parameters.firstIndex(of: parameter) { return "$\(index + 1)" }
        parameters.append(parameter)
        return "$\(parameters.count)"
    }

    func statement(_ sql: String) -> PlannedStatement {
        PlannedStatement(sql: sql, parameters: parameters)
    }
}

/// A join path written as FROM items and join conditions, starting from an alias already in scope.
struct SQLPath {
    /// `"shop"."order" AS r1, ...` (may be empty when the last alias is bound outside).
    var items: [String] = []
    /// `r1."customer_id" = s."id"`, ...
    var joins: [String] = []
    /// The alias of the path's last table.
    var last: String

    /// `path` from `start`; the hops' tables get aliases `prefix1`, `prefix2`, ...; `lastAlias` names the last
    /// table, which gets no FROM item when it is `bound` (already in scope).
    init(_ path: [JoinHop], from start: String, prefix: String, lastAlias: String? = nil, bound: Bool = true) {
        var previous = start
        last = start
        for (index, hop) in path.enumerated() {
            let isLast = index == path.count - 1
            let alias = isLast ? (lastAlias ?? "\(prefix)\(index + 1)") : "\(prefix)\(index + 1)"
            if !(isLast && lastAlias != nil && bound) {
                items.append("\(SQLIdentifier.quoted(schema: hop.to.schema, name: hop.to.name)) AS \(alias)")
            }
            for (to, from) in zip(hop.toColumns, hop.fromColumns) {
                joins.append(
                    "\(alias).\(SQLIdentifier.quoted(to.name)) = \(previous).\(SQLIdentifier.quoted(from.name))")
            }
            previous = alias
            last = alias
        }
    }

    var from: String { items.joined(separator: ", ") }

    func conditions(and extra: [String]) -> String {
        let all = joins + extra
        return all.isEmpty ? "true" : all.joined(separator: " AND ")
    }
}

/// Quoting and checks for SQL text.
public enum SQLText {
    /// A string literal (`'it''s'`), for column names used as JSON keys; never for values.
    static func literal(_ text: String) -> String {
        "'" + text.replacing("'", with: "''") + "'"
    }

    static func checkIdentifier(_ name: String) throws(PlanError) {
        guard !name.isEmpty, !name.utf8.contains(0), name.utf8.count <= 63 else {
            throw .unusableIdentifier(name)
        }
    }

    /// Type names as `format_type` prints them (``SQLTypeName/isCastable(_:)``); the validator checks the same.
    static func checkTypeName(_ type: String) throws(PlanError) {
        guard SQLTypeName.isCastable(type) else { throw .unusableTypeName(type) }
    }

    /// `[{"column": "value"}, ...]`: values as JSON strings (their PostgreSQL text), nulls as null.
    static func recordsJSON(column: String, values: [Scalar]) -> String {
        JSONValue.array(
            values.map { value in .object([column: text(of: value).map(JSONValue.string) ?? .null]) }
        ).canonicalText
    }

    /// The PostgreSQL input text of a scalar.
    static func text(of value: Scalar) -> String? {
        switch value {
        case .string(let text): text
        case .integer(let number): String(number)
        case .decimal(let text): text
        case .boolean(let flag): flag ? "true" : "false"
        case .null: nil
        }
    }
}
