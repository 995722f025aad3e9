import GallraCore
import GallraPolicy
import GallraPostgres

/// Why one subject stands where it does under every policy over its table, at one instant: what a live run at that
/// instant does to it, and why. Computed with the planner's own SQL (the due predicate's parts, and the dry run's
/// counts restricted to the subject), in one read-only snapshot.
public struct SubjectExplanation: Sendable, Hashable, Codable {
    /// The subject table, schema-qualified.
    public var table: String
    /// The key's text.
    public var key: String
    /// The instant, RFC 3339.
    public var asOf: String
    /// Whether the subject table has a row with the key.
    public var exists: Bool
    /// Per policy over the table, in name order.
    public var policies: [PolicyStanding]
    /// The subject's audit digest, nil without an audit key.
    public var subjectDigest: String?
    /// The subject's records in the audit trail, oldest first; nil without an audit key.
    public var history: [AuditSubjectEntry]?
}

/// One subject under one policy.
public struct PolicyStanding: Sendable, Hashable, Codable {
    /// What a live run at the instant does to the subject, and why.
    public enum Verdict: String, Sendable, Hashable, Codable {
        /// Due: a live run processes it.
        case due
        /// The rule does not hold yet: it expires at ``PolicyStanding/expiresAt``.
        case notYet = "not_yet"
        /// An exemption holds (``PolicyStanding/exemptions``).
        case exempt
        /// The rule holds and no exemption does, but a legal hold is in force (``PolicyStanding/holds``).
        case held
        /// The rule reads no date: a null column, no related row, or a related row with a null date.
        case noDate = "no_date"
        /// An on-request policy (`expires: on_request`) and no due erasure request for the subject.
        case notRequested = "not_requested"
        /// Consent is in force (or was never recorded) under a consent policy.
        case consentInForce = "consent_in_force"
        /// The policy processed the subject before and keeps its row.
        case processed
        /// The subject table has no row with the key.
        case noSubject = "no_subject"
        /// The policy is disabled: no run uses it.
        case disabled
    }

    /// An exemption that holds.
    public struct ExemptionMatch: Sendable, Hashable, Codable {
        /// `except[index]`.
        public var index: Int
        /// The exemption in words (`legal_hold is true`).
        public var condition: String
    }

    /// A legal hold in force that stops the policy for the subject (`gallra hold`).
    public struct HoldMatch: Sendable, Hashable, Codable {
        /// The hold's id (`gallra hold release ID`).
        public var id: Int64
        public var reason: String
        /// When it ends by itself, RFC 3339; nil: until released.
        public var until: String?
        /// The one policy it names; nil: every policy over the table.
        public var policy: String?
    }

    /// The consent the rule of a consent policy reads.
    public struct Consent: Sendable, Hashable, Codable {
        /// `gallra` (the registry) or the consent table.
        public var source: String
        /// `granted`, `revoked` or `none` (no event, no row).
        public var state: String
        /// The latest event (registry) or the latest revocation (table), RFC 3339.
        public var at: String?
        /// For a consent table: its rows for the subject, and how many are in force (no revocation).
        public var rows: Int?
        public var inForce: Int?
    }

    /// Rows of one data point a live run acts on for the subject.
    public struct Step: Sendable, Hashable, Codable {
        /// `data[dataPoint]`.
        public var dataPoint: Int
        public var table: String
        /// `delete`, `anonymize` or `delete_or_anonymize`.
        public var action: String
        /// Rows deleted or anonymized.
        public var rows: Int
        /// For `delete_or_anonymize`: of ``rows``, those anonymized because something still references them; nil
        /// for the other actions.
        public var anonymized: Int?
        /// Rows reached but retained: other rows that do not expire still use them.
        public var retained: Int
        /// Which foreign keys hold the retained rows.
        public var retainedBy: [RetainedBy]
    }

    /// Retained rows one foreign key's rows still use.
    public struct RetainedBy: Sendable, Hashable, Codable {
        /// The referencing table.
        public var table: String
        public var columns: [String]
        public var foreignKey: String
        /// The retained rows it references.
        public var rows: Int
    }

    public var policy: String
    public var version: Int
    /// `draft`, `active` or `disabled`.
    public var state: String
    public var verdict: Verdict
    /// The rule in words (`inactive_for 1 year, activity last_seen_at`).
    public var rule: String
    /// Where the date comes from (`last_seen_at`, `latest shop.order.placed_at`, `gallra consent registry`).
    public var dateSource: String?
    /// The date the rule reads, RFC 3339; nil when unknown.
    public var date: String?
    /// The date plus the period, RFC 3339: the subject expires after it.
    public var expiresAt: String?
    /// For a rule on a related table: its rows for the subject, and how many have a null date.
    public var relatedRows: Int?
    public var nullDates: Int?
    /// The exemptions that hold.
    public var exemptions: [ExemptionMatch]
    /// The legal holds in force that stop the policy for the subject, whatever the rule says.
    public var holds: [HoldMatch] = []
    /// For a consent policy, the consent it reads.
    public var consent: Consent?
    /// Per data point, in apply order: what a live run does (zero rows unless due).
    public var steps: [Step]
    /// The subject's consent events a live run removes from gallra's registry.
    public var consentEvents: Int
    /// Set when the subject is due but the limits refuse the policy at the instant: a live run processes no
    /// subject of it unless given `--allow-large`.
    public var refused: GuardRefusal? = nil
}

/// The subject of an explanation is not covered by a policy.
public struct NoPolicyOverTableError: Error, Sendable, CustomStringConvertible, ExitStatusProviding {
    public var table: String

    public var description: String {
        "no policy names \(table) as its subject table; gallra policy list shows the policies and their subjects"
    }
    public var exitStatus: ExitStatus { .dataError }
}

extension Engine {
    /// Explains subject `key` of `table` under `policies` (drafts included) and lists `disabled` policies over it,
    /// at `asOf` (now when nil), in one `READ ONLY` transaction at `REPEATABLE READ`; with `digester`, the subject's
    /// audit records too. Throws ``NoPolicyOverTableError`` when no policy names the table.
    public func explain(
        table: QualifiedName, key: String, policies: [RunPolicy], disabled: [(name: String, version: Int)],
        asOf: PostgresTimestamp?, digester: SubjectDigester?
    ) async throws -> SubjectExplanation {
        try await Schema.requireCurrent(on: connection)
        let mine = policies.filter { $0.resolved.subject.table == table }
        guard !mine.isEmpty || !disabled.isEmpty else { throw NoPolicyOverTableError(table: table.description) }
        let digest = digester?.digest(table: table.description, key: key)
        return try await connection.transaction(isolation: .repeatableRead, readOnly: true) { connection in
            try await connection.execute("SET LOCAL jit = off")
            let instant: PostgresTimestamp
            if let asOf {
                instant = asOf
            } else {
                let row = try await connection.query("SELECT now() AS now").first
                guard let row else { throw PostgresError(.decoding, "SELECT now() returned no row") }
                instant = try row.decode("now", as: PostgresTimestamp.self)
            }
            var standings: [PolicyStanding] = []
            var exists = false
            for policy in mine {
                let standing = try await Self.standing(of: key, under: policy, asOf: instant, on: connection)
                exists = exists || standing.verdict != .noSubject
                standings.append(standing)
            }
            for policy in disabled {
                standings.append(
                    PolicyStanding(
                        policy: policy.name, version: policy.version, state: "disabled", verdict: .disabled, rule: "",
                        exemptions: [], steps: [], consentEvents: 0))
            }
            standings.sort { $0.policy < $1.policy }
            var history: [AuditSubjectEntry]?
            if let digest { history = try await AuditTrail.lookup(digest: digest, on: connection) }
            return SubjectExplanation(
                table: table.description, key: key, asOf: Self.iso8601(instant), exists: exists, policies: standings,
                subjectDigest: digest, history: history)
        }
    }

    /// Subject `key` under `policy` at `asOf`. With `rows` (as `gallra explain` asks), also the rows a live run
    /// acts on per data point, the consent events it removes and the limits' verdict on the whole policy, which
    /// cost queries over every due subject; without (as an extract asks), the verdict and why, from the due
    /// predicate's parts alone.
    static func standing(
        of key: String, under policy: RunPolicy, asOf: PostgresTimestamp, rows: Bool = true,
        on connection: isolated PostgresConnection
    ) async throws -> PolicyStanding {
        let resolved = policy.resolved
        let planner = try Planner(resolved, requests: policy.requests)
        var bindings = Bindings(asOf: asOf, policyName: resolved.name.rawValue)
        bindings.keys = keyArray([key])
        var standing = PolicyStanding(
            policy: resolved.name.rawValue, version: policy.version, state: policy.state.rawValue, verdict: .noSubject,
            rule: Self.words(resolved.policy.rule), exemptions: [], steps: [], consentEvents: 0)
        let explain = planner.explainSubject()
        guard let row = try await connection.query(explain.sql, values(explain, bindings)).first else {
            return standing
        }
        let ruleHolds = try row.decode("rule_holds", as: Bool.self)
        let processed = try row.decode("processed", as: Bool.self)
        if try row.decode("held", as: Bool.self) {
            standing.holds = try await Holds.inForce(
                subjectTable: resolved.subject.table.description,
                subjectKey: try row.decode("subject_key", as: String.self), policy: resolved.name.rawValue,
                asOf: asOf, on: connection
            ).map {
                PolicyStanding.HoldMatch(
                    id: $0.id, reason: $0.reason,
                    until: $0.untilMicroseconds.map {
                        Self.iso8601(PostgresTimestamp(microsecondsSince2000: $0 - Holds.epochOffset))
                    }, policy: $0.policy)
            }
        }
        for exemption in resolved.exemptions.indices where try row.decode("exempt_\(exemption)", as: Bool.self) {
            standing.exemptions.append(
                .init(index: exemption, condition: Self.words(resolved.policy.exemptions[exemption])))
        }
        let date = try row.decode("date", as: PostgresTimestamp?.self)
        standing.date = date.map(Self.iso8601)
        standing.expiresAt = try row.decode("expires_at", as: PostgresTimestamp?.self).map(Self.iso8601)
        standing.relatedRows = try row.decode("related_rows", as: Int?.self)
        standing.nullDates = try row.decode("null_dates", as: Int?.self)
        let event = try row.decode("event", as: String?.self)
        standing.dateSource = Self.dateSource(resolved)
        if case .consentRevoked(_, let source) = resolved.policy.rule {
            switch source {
            case .gallra:
                standing.consent = .init(
                    source: "gallra", state: event ?? "none", at: standing.date, rows: nil, inForce: nil)
            case .table(let table, _, _):
                let rows = standing.relatedRows ?? 0
                let inForce = standing.nullDates ?? 0
                standing.consent = .init(
                    source: table.description, state: rows == 0 ? "none" : inForce > 0 ? "granted" : "revoked",
                    at: inForce > 0 ? nil : standing.date, rows: rows, inForce: inForce)
            }
        }

        // Due or not, and the rows, from the dry run's counts restricted to the subject.
        var acted: [Int: (rows: Int, retained: Int, anonymized: Int)] = [:]
        var references: [Int: [Int: Int]] = [:]
        var due = false
        let counts = planner.subjectCounts()
        for count in rows ? try await connection.query(counts.sql, values(counts, bindings)).rows : [] {
            let rows = try count.decode("acted", as: Int.self)
            let retained = try count.decode("retained", as: Int.self)
            guard let step = try count.decode("step", as: Int?.self) else {
                due = rows > 0
                continue
            }
            if let reference = try count.decode("reference", as: Int?.self) {
                references[step, default: [:]][reference] = retained
            } else {
                acted[step] = (rows, retained, try count.decode("anonymized", as: Int.self))
            }
        }
        for (index, step) in resolved.steps.enumerated() where rows {
            let retainedBy = step.referencedBy.enumerated().compactMap {
                number, reference -> PolicyStanding.RetainedBy? in
                guard let rows = references[index]?[number], rows > 0 else { return nil }
                return .init(
                    table: reference.table.description, columns: reference.columns.map(\.name),
                    foreignKey: reference.foreignKey, rows: rows)
            }
            standing.steps.append(
                .init(
                    dataPoint: step.dataPoint, table: step.table.description,
                    action: StepCounts.Action(step.action).rawValue, rows: acted[index]?.rows ?? 0,
                    anonymized: step.action.mayDelete && step.action.mayAnonymize
                        ? acted[index]?.anonymized ?? 0 : nil,
                    retained: acted[index]?.retained ?? 0, retainedBy: retainedBy))
        }
        if due {
            // The blast-radius guard judges the policy as a whole, as the run does before its first batch.
            let subjects = planner.countSubjects()
            let expiring =
                try await connection.query(subjects.sql, values(subjects, bindings)).first?.decode(
                    "expiring", as: Int.self) ?? 0
            standing.refused = try await LivePolicyRun.guardRefusal(
                planner: planner, expiring: expiring, limits: resolved.policy.limits, on: connection)
            let events = planner.subjectConsentEvents()
            standing.consentEvents =
                try await connection.query(events.sql, values(events, bindings)).first?.decode("events", as: Int.self)
                ?? 0
        }

        if due {
            standing.verdict = .due
        } else if processed {
            standing.verdict = .processed
        } else if !standing.exemptions.isEmpty {
            standing.verdict = .exempt
        } else if ruleHolds, !standing.holds.isEmpty {
            standing.verdict = .held
        } else if ruleHolds {
            // The rule holds, nothing exempts, not processed: only a changed snapshot could say otherwise.
            standing.verdict = .due
        } else if resolved.policy.rule == .onRequest {
            standing.verdict = .notRequested
        } else if let consent = standing.consent, consent.state != "revoked" {
            standing.verdict = .consentInForce
        } else if date == nil || (standing.nullDates ?? 0) > 0 {
            standing.verdict = .noDate
        } else {
            standing.verdict = .notYet
        }
        return standing
    }

    /// Where the rule reads its date, for people.
    static func dateSource(_ resolved: ResolvedPolicy) -> String {
        if case .consentRevoked(_, .gallra) = resolved.policy.rule { return "gallra consent registry" }
        if resolved.policy.rule == .onRequest { return "gallra erasure requests" }
        if resolved.rule.path.isEmpty { return resolved.rule.column.name }
        return "latest \(resolved.rule.table).\(resolved.rule.column.name)"
    }

    /// A rule in the words of the policy file.
    static func words(_ rule: Rule) -> String {
        switch rule {
        case .inactiveFor(let period, .column(let column)):
            "inactive_for \(period), activity \(column.name)"
        case .inactiveFor(let period, .latestRow(let table, let column, _)):
            "inactive_for \(period), activity latest \(table).\(column.name)"
        case .olderThan(let period, let created): "older_than \(period), created \(created.name)"
        case .after(let period, let event): "after \(period), event \(event.name)"
        case .consentRevoked(let grace, .gallra): "consent_revoked \(grace), consent gallra"
        case .consentRevoked(let grace, .table(let table, let revokedAt, _)):
            "consent_revoked \(grace), consent \(table).\(revokedAt.name)"
        case .onRequest: "on_request"
        }
    }

    /// An exemption in the words of the policy file (`legal_hold is true`), values included: they come from the
    /// policy, not from rows.
    static func words(_ exemption: Exemption) -> String {
        func predicate(_ predicate: Exemption.Predicate) -> String {
            func text(_ value: Scalar) -> String { SQLText.text(of: value) ?? "null" }
            switch predicate {
            case .is(let truth): return "is \(truth.rawValue)"
            case .equals(let value): return "equals \(text(value))"
            case .in(let values): return "in [\(values.map(text).joined(separator: ", "))]"
            case .notIn(let values): return "not_in [\(values.map(text).joined(separator: ", "))]"
            }
        }
        switch exemption {
        case .column(let column, let condition):
            return "\(column.name) \(predicate(condition))"
        case .relatedExists(let table, _, _, let conditions):
            let filter = conditions.map { "\($0.column.name) \(predicate($0.predicate))" }
            return "exists \(table)" + (filter.isEmpty ? "" : " where " + filter.joined(separator: " and "))
        }
    }
}

// Every key is written, null when unknown, so that the JSON has one shape whatever the subject's standing.
extension PolicyStanding {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(policy, forKey: .policy)
        try container.encode(version, forKey: .version)
        try container.encode(state, forKey: .state)
        try container.encode(verdict, forKey: .verdict)
        try container.encode(rule, forKey: .rule)
        try container.encode(dateSource, forKey: .dateSource)
        try container.encode(date, forKey: .date)
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encode(relatedRows, forKey: .relatedRows)
        try container.encode(nullDates, forKey: .nullDates)
        try container.encode(exemptions, forKey: .exemptions)
        try container.encode(holds, forKey: .holds)
        try container.encode(consent, forKey: .consent)
        try container.encode(steps, forKey: .steps)
        try container.encode(consentEvents, forKey: .consentEvents)
        try container.encode(refused, forKey: .refused)
    }
}

extension PolicyStanding.Consent {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(source, forKey: .source)
        try container.encode(state, forKey: .state)
        try container.encode(at, forKey: .at)
        try container.encode(rows, forKey: .rows)
        try container.encode(inForce, forKey: .inForce)
    }
}

extension PolicyStanding.Step {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(dataPoint, forKey: .dataPoint)
        try container.encode(table, forKey: .table)
        try container.encode(action, forKey: .action)
        try container.encode(rows, forKey: .rows)
        try container.encode(anonymized, forKey: .anonymized)
        try container.encode(retained, forKey: .retained)
        try container.encode(retainedBy, forKey: .retainedBy)
    }
}
