import GallraCore
import GallraPolicy

/// The SQL of one data point's step.
public struct StepPlan: Sendable, Hashable {
    /// The step's place in ``ResolvedPolicy/steps`` (the apply order).
    public var index: Int
    public var step: ResolvedStep
    /// Rows the subject owns, or the subject row: acts on the batch's subjects and returns `subject, rows`
    /// (rows per subject key; for a delete-or-anonymize, `rows` deleted and `anonymized`). Nil for rows the
    /// subject points to.
    public var act: PlannedStatement?
    /// Rows the subject owns, for a delete-or-anonymize: locks them `FOR UPDATE` before ``act``, so that no row
    /// referencing them can appear between the moment ``act`` judges which rows are still referenced and its
    /// delete (an insert that references a locked row waits for the batch). Nil otherwise.
    public var lock: PlannedStatement?
    /// Rows the subject owns (a path from the subject): locks the batch's rows of the step's table without
    /// waiting (`SKIP LOCKED`) and returns the `subject`s with a row another transaction holds, so that the batch
    /// leaves those subjects instead of waiting for `lock_timeout`. Run only when the steps met a held lock. Nil
    /// for the subject row (the pick locks it) and for rows the subject points to.
    public var lockFree: PlannedStatement?
    /// Rows the subject points to: identifies and locks them at batch start, returning `subject, row, shared, step`
    /// (`row` identifies the row by its referenced key as a JSON object; `shared` when something outside the
    /// due subjects' data still references it; `step` the twin it counts under). Rows the policy already
    /// anonymized, and that still hold what it wrote, are left out. One statement covers the step and its twins
    /// (referenced steps acting alike on one table): it is set on the first of them, nil on the others.
    public var capture: PlannedStatement?
    /// Rows the subject points to: locks the rows ``capture`` reaches without waiting (`SKIP LOCKED`) and returns
    /// the `subject`s that point to a row another transaction holds, so that the batch leaves those subjects
    /// instead of waiting for `lock_timeout`. Run only when the capture met a held lock. Set with ``capture``.
    public var captureLockFree: PlannedStatement?
    /// Rows the subject points to: acts on the captured, unshared rows of the step and its twins (`$rows`),
    /// returning `row` per row changed; a hashing anonymize also records each row in `gallra.processed_row`
    /// (same statement, so same transaction). Set with ``capture``. A delete-or-anonymize deletes with it.
    public var actOnRows: PlannedStatement?
    /// Rows the subject points to, for a delete-or-anonymize: anonymizes the captured, shared rows (`$rows`), as
    /// ``actOnRows`` does for an anonymize. Set with ``capture`` for such a step, nil otherwise.
    public var anonymizeRows: PlannedStatement?

    /// Whether the step deletes every row it acts on.
    public var deletes: Bool { step.action == .delete }
    /// Whether the step deletes the rows nothing references any more and anonymizes the others.
    public var deletesOrAnonymizes: Bool { if case .deleteOrAnonymize = step.action { true } else { false } }

    /// The action the run report counts the step under.
    public var countedAction: StepCounts.Action { StepCounts.Action(step.action) }
}

extension Planner {
    /// Every step's SQL, in apply order.
    public func stepPlans() -> [StepPlan] {
        resolved.steps.enumerated().map { index, step in
            switch step.relation {
            case .subject, .owned:
                let combined = step.action.mayDelete && step.action.mayAnonymize
                return StepPlan(
                    index: index, step: step, act: act(step), lock: combined && !step.path.isEmpty ? lock(step) : nil,
                    lockFree: step.path.isEmpty ? nil : lockFree(step), capture: nil, captureLockFree: nil,
                    actOnRows: nil, anonymizeRows: nil)
            case .referenced:
                // A twin group is captured and acted on at its first step's turn; a delete-or-anonymize deletes the
                // unshared rows and anonymizes the shared ones.
                let capture = capture(step)
                let acting = step.action.mayDelete ? .delete : step.action
                let anonymization = step.action.mayDelete ? step.action.anonymization : nil
                return StepPlan(
                    index: index, step: step, act: nil, lock: nil, lockFree: nil, capture: capture,
                    captureLockFree: capture.flatMap { _ in captureLockFree(step) },
                    actOnRows: capture.map { _ in actOnRows(step, action: acting) },
                    anonymizeRows: capture.flatMap { _ in anonymization.map { actOnRows(step, action: $0) } })
            }
        }
    }

    // MARK: - Owned rows and the subject row

    /// `WITH d AS (DELETE|UPDATE ... RETURNING subject) SELECT subject, count(*)`: per-subject row counts only.
    ///
    /// A delete-or-anonymize anonymizes the rows still referenced and deletes the others in one statement (one
    /// snapshot, so each row is judged once, after the earlier steps): `subject, rows, anonymized`.
    func act(_ step: ResolvedStep) -> PlannedStatement {
        if case .deleteOrAnonymize(let columns) = step.action { return deleteOrAnonymize(step, columns) }
        var sql = SQLBuilder()
        let table = SQLIdentifier.quoted(schema: step.table.schema, name: step.table.name)
        let modify: String
        if step.path.isEmpty {
            let member = member(&sql, .batch, key: key("x"))
            switch step.action {
            case .delete:
                modify = "DELETE FROM \(table) AS x WHERE \(member) RETURNING \(key("x"))::text AS subject"
            case .anonymize(let columns), .deleteOrAnonymize(let columns):
                let set = assignments(&sql, step, columns)
                modify = "UPDATE \(table) AS x SET \(set) WHERE \(member) RETURNING \(key("x"))::text AS subject"
            }
        } else if step.path.count == 1, let link = directLink(step.path[0]),
            !step.action.columns.contains(where: { $0.column.name == link })
        {
            // Rows that hold the subject key itself, which the step leaves as it is: the batch's rows are found by
            // that column, and it names their subject, with no join to the batch's keys.
            let column = "x.\(SQLIdentifier.quoted(link))"
            let member = member(&sql, .batch, key: column)
            let subject = "\(column)::\(resolved.subject.keyType)::text AS subject"
            switch step.action {
            case .delete:
                modify = "DELETE FROM \(table) AS x WHERE \(member) RETURNING \(subject)"
            case .anonymize(let columns), .deleteOrAnonymize(let columns):
                modify =
                    "UPDATE \(table) AS x SET \(assignments(&sql, step, columns)) WHERE \(member) RETURNING \(subject)"
            }
        } else {
            var set: String?
            if case .anonymize(let columns) = step.action { set = assignments(&sql, step, columns) }
            let reached = batchPath(&sql, step.path, lastAlias: "x", bound: true)
            let from =
                reached.items.isEmpty
                ? "" : " \(set == nil ? "USING" : "FROM") " + reached.items.joined(separator: ", ")
            let target = set.map { "UPDATE \(table) AS x SET \($0)\(from)" } ?? "DELETE FROM \(table) AS x\(from)"
            modify =
                "\(target) WHERE \(reached.conditions.joined(separator: " AND ")) RETURNING \(key("s"))::text AS subject"
        }
        return sql.statement(
            "WITH d AS (\(modify))\nSELECT subject, count(*) AS rows FROM d GROUP BY subject")
    }

    /// The delete-or-anonymize of rows the subject owns, or of the subject row: ``act(_:)``.
    func deleteOrAnonymize(_ step: ResolvedStep, _ columns: [ResolvedAnonymization]) -> PlannedStatement {
        var sql = SQLBuilder()
        let table = SQLIdentifier.quoted(schema: step.table.schema, name: step.table.name)
        let set = assignments(&sql, step, columns)
        let kept = stillReferenced(step, row: "x")
        let anonymize: String
        let delete: String
        if step.path.isEmpty {
            let member = member(&sql, .batch, key: key("x"))
            let returning = "RETURNING \(key("x"))::text AS subject"
            anonymize = "UPDATE \(table) AS x SET \(set) WHERE \(member) AND \(kept) \(returning)"
            delete = "DELETE FROM \(table) AS x WHERE \(member) AND NOT \(kept) \(returning)"
        } else {
            let reached = batchPath(&sql, step.path, lastAlias: "x", bound: true)
            let conditions = reached.conditions.joined(separator: " AND ")
            let from = reached.items.joined(separator: ", ")
            let returning = "RETURNING \(key("s"))::text AS subject"
            anonymize = "UPDATE \(table) AS x SET \(set) FROM \(from) WHERE \(conditions) AND \(kept) \(returning)"
            delete = "DELETE FROM \(table) AS x USING \(from) WHERE \(conditions) AND NOT \(kept) \(returning)"
        }
        return sql.statement(
            """
            WITH a AS (\(anonymize)),
            d AS (\(delete))
            SELECT subject, count(*) FILTER (WHERE NOT anonymized) AS rows, count(*) FILTER (WHERE anonymized) AS anonymized
            FROM (SELECT subject, true AS anonymized FROM a UNION ALL SELECT subject, false FROM d) AS c GROUP BY subject
            """)
    }

    /// Locks the rows a delete-or-anonymize of owned rows reaches from the batch's subjects (``StepPlan/lock``).
    func lock(_ step: ResolvedStep) -> PlannedStatement {
        var sql = SQLBuilder()
        let table = SQLIdentifier.quoted(schema: step.table.schema, name: step.table.name)
        let reached = batchPath(&sql, step.path, lastAlias: "x", bound: true)
        let from = (["\(table) AS x"] + reached.items).joined(separator: ", ")
        return sql.statement(
            "SELECT FROM \(from) WHERE \(reached.conditions.joined(separator: " AND ")) FOR UPDATE OF x")
    }

    /// Locks the rows a step on owned rows reaches from the batch's subjects, skipping those another transaction
    /// holds, and returns the subjects that reach a skipped row (``StepPlan/lockFree``). One statement: the rows
    /// reached and the rows locked are read on one snapshot and compared by their physical identity. A row updated
    /// and committed by another transaction between the two reads counts as held: its subject waits for a later
    /// run rather than being judged on a row version the batch has not seen.
    func lockFree(_ step: ResolvedStep) -> PlannedStatement {
        var sql = SQLBuilder()
        let table = SQLIdentifier.quoted(schema: step.table.schema, name: step.table.name)
        let reached = batchPath(&sql, step.path, lastAlias: "x", bound: true)
        let from = (["\(table) AS x"] + reached.items).joined(separator: ", ")
        let conditions = reached.conditions.joined(separator: " AND ")
        // A delete-or-anonymize takes only the update's lock here: a row a transaction is referencing right now (its
        // insert holds a key-share lock) is waited for by ``lock(_:)`` and then kept, as that lock intends.
        let strength = step.action.mayAnonymize ? "FOR NO KEY UPDATE" : "FOR UPDATE"
        return sql.statement(
            """
            WITH a AS MATERIALIZED (SELECT \(key("s"))::text AS subject, x.tableoid AS t, x.ctid AS c FROM \(from) WHERE \(conditions)),
            l AS MATERIALIZED (SELECT x.tableoid AS t, x.ctid AS c FROM \(from) WHERE \(conditions) \(strength) OF x SKIP LOCKED)
            SELECT DISTINCT a.subject FROM a WHERE NOT EXISTS (SELECT FROM l WHERE l.t = a.t AND l.c = a.c)
            """)
    }

    /// Whether row `row` of a delete-or-anonymize's table is referenced by some row, of any table, through any
    /// foreign key (``ResolvedStep/referencedBy``), now: such a row is kept and anonymized, whatever the key's ON
    /// DELETE (a cascade would delete the row referencing it, SET NULL change it). A row referencing itself does not
    /// keep itself. Never null: a key with a null column references nothing.
    func stillReferenced(_ step: ResolvedStep, row: String) -> String {
        guard !step.referencedBy.isEmpty else { return "false" }
        let parts = step.referencedBy.enumerated().map { number, reference -> String in
            let other = "h\(number + 1)"
            var joins = zip(reference.columns, reference.referencedColumns).map {
                "\(other).\(SQLIdentifier.quoted($0.name)) = \(row).\(SQLIdentifier.quoted($1.name))"
            }
            if reference.table == step.table {
                joins.append("(\(other).tableoid, \(other).ctid) <> (\(row).tableoid, \(row).ctid)")
            }
            let table = SQLIdentifier.quoted(schema: reference.table.schema, name: reference.table.name)
            return "EXISTS (SELECT FROM \(table) AS \(other) WHERE \(joins.joined(separator: " AND ")))"
        }
        return "(" + parts.joined(separator: " OR ") + ")"
    }

    /// The rows reached along `path` from the batch's subjects, with `s` the subject: FROM items and join
    /// conditions, membership in the batch included. A path that starts with a link to the subject key needs no
    /// lookup of the subject rows (the batch's subjects are locked, so they exist): `s` is the batch's keys
    /// themselves, and the first table's link column is also matched against them as a whole, so that the server
    /// fetches the batch's rows with one index scan over all keys, in table order, instead of one lookup per
    /// subject. (The key comes from `s`, not from the link column: an update that detaches the row nulls it.)
    func batchPath(
        _ sql: inout SQLBuilder, _ path: [JoinHop], lastAlias: String, bound: Bool
    ) -> (items: [String], conditions: [String]) {
        let joined = SQLPath(path, from: "s", prefix: "j", lastAlias: lastAlias, bound: bound)
        if let first = path.first, first.from == resolved.subject.table,
            first.fromColumns.map(\.name) == [resolved.subject.key.name], first.toColumns.count == 1
        {
            let link = "\(path.count == 1 ? lastAlias : "j1").\(SQLIdentifier.quoted(first.toColumns[0].name))"
            let member = member(&sql, .batch, key: link)
            return (["unnest(\(batchKeys(&sql))) AS s(\(keyColumn))"] + joined.items, joined.joins + [member])
        }
        return (["\(subjectTable) AS s"] + joined.items, joined.joins + [member(&sql, .batch, key: key("s"))])
    }

    /// Whether row `row` of a path's last table is reached from a subject of `set` along `path`.
    func reachedCondition(_ sql: inout SQLBuilder, _ path: [JoinHop], row: String, set: SubjectSet) -> String {
        guard !path.isEmpty else { return isMember(&sql, set, alias: row) }
        let joined = SQLPath(path, from: "s", prefix: "k", lastAlias: row)
        let from = (["\(subjectTable) AS s"] + joined.items).joined(separator: ", ")
        return
            "EXISTS (SELECT FROM \(from) WHERE \(joined.conditions(and: [isMember(&sql, set, alias: "s")])))"
    }

    // MARK: - Rows the subject points to

    /// The columns identifying a row the subject points to: the referenced key of the path's last (parent) hop.
    func identityColumns(_ step: ResolvedStep) -> [ColumnName] {
        step.path.last?.toColumns ?? []
    }

    /// `jsonb_build_object('id', x."id")::text`.
    func identity(_ step: ResolvedStep, alias: String) -> String {
        let pairs = identityColumns(step).map {
            "\(SQLText.literal($0.name)), \(alias).\(SQLIdentifier.quoted($0.name))"
        }
        return "jsonb_build_object(\(pairs.joined(separator: ", ")))::text"
    }

    /// The step's path from the subject as text (`geo.account.address_id -> geo.address.id`): with the table, it
    /// tells apart two data points on one table (a billing and a shipping address) in `gallra.processed_row`.
    func pathText(_ step: ResolvedStep) -> String {
        step.path.map { hop in
            "\(hop.from).\(hop.fromColumns.map(\.name).joined(separator: ",")) -> "
                + "\(hop.to).\(hop.toColumns.map(\.name).joined(separator: ","))"
        }.joined(separator: ", ")
    }

    /// SHA-256 (hex) of an anonymize step's columns of row `alias` as a jsonb array: what the step wrote, as
    /// recorded in `gallra.processed_row`; nil for a delete.
    func fingerprint(_ step: ResolvedStep, alias: String) -> String? {
        guard step.action.mayAnonymize else { return nil }
        let values = step.action.columns.map { "\(alias).\(SQLIdentifier.quoted($0.column.name))" }.joined(
            separator: ", ")
        return "encode(sha256(convert_to(jsonb_build_array(\(values))::text, 'UTF8')), 'hex')"
    }

    /// The referenced steps that act on the same rows in the same way as `step` (same table, same action), with
    /// their places in the apply order: a billing and a shipping address anonymized alike. They act on a row
    /// once, and count it under the first of them (in policy order) that reaches it from a due subject.
    func twins(of step: ResolvedStep) -> [(index: Int, step: ResolvedStep)] {
        resolved.steps.enumerated().compactMap { index, candidate in
            candidate.relation == .referenced && candidate.table == step.table && candidate.action == step.action
                && identityColumns(candidate) == identityColumns(step) ? (index, candidate) : nil
        }
    }

    /// The twins that come before `step` in policy order.
    func earlierTwins(of step: ResolvedStep) -> [(index: Int, step: ResolvedStep)] {
        Array(twins(of: step).prefix { $0.step != step })
    }

    /// Whether an anonymize writes the same values when it runs again on its own result: true unless a column
    /// is hashed (`hash`, `fake_email`: a second pass would pseudonymise the pseudonym). True for a delete.
    func isIdempotent(_ step: ResolvedStep) -> Bool {
        step.action.columns.allSatisfy { column in
            switch column.strategy {
            case .hash, .fakeEmail: false
            case .null, .redact, .set, .truncate: true
            }
        }
    }

    /// Whether row `row` of a referenced step still needs the step (nil for a delete: a deleted row is gone):
    /// - an anonymize of nulls, constants and truncations is done when the row already holds what it writes (the
    ///   columns are compared with their anonymized values; nothing needs recording);
    /// - a hashing anonymize is done when `gallra.processed_row` records the row with the fingerprint of what
    ///   the step (or a twin) wrote and the row still holds it. The lookup is a scalar subquery, one primary-key
    ///   probe per row, whatever the statistics of `gallra.processed_row` say.
    /// Either way a row the application has changed since is done again.
    func notProcessedRow(_ sql: inout SQLBuilder, _ step: ResolvedStep, row: String) -> String? {
        guard step.action.mayAnonymize else { return nil }
        let columns = step.action.columns
        if isIdempotent(step) {
            let current = columns.map { "\(row).\(SQLIdentifier.quoted($0.column.name))" }
            let anonymized = columns.map { strategyExpression(&sql, step, $0, row: row) }
            return "jsonb_build_array(\(current.joined(separator: ", "))) "
                + "IS DISTINCT FROM jsonb_build_array(\(anonymized.joined(separator: ", ")))"
        }
        guard let fingerprint = fingerprint(step, alias: row) else { return nil }
        return """
            (SELECT pr.fingerprint FROM gallra.processed_row AS pr WHERE pr.policy = \(sql.bind(.policyName)) \
            AND pr.table_name = \(sql.bind(.text(step.table.description))) AND pr.path = \(sql.bind(.text(recordedPath(step)))) \
            AND pr.row_key = \(identity(step, alias: row))) IS DISTINCT FROM \(fingerprint)
            """
    }

    /// The path under which `gallra.processed_row` records a hashing step's rows: its first twin's.
    func recordedPath(_ step: ResolvedStep) -> String {
        pathText(twins(of: step).first?.step ?? step)
    }

    /// Identifies and locks the rows the batch's subjects point to along the paths of `step` and its twins, with
    /// whether each is shared and the step it counts under: one statement per twin group, run for its first step
    /// (nil for the others), so a row two twins reach is judged once.
    ///
    /// Sharing is judged against every subject due at the run's instant, not the batch alone: a row two due
    /// subjects use is acted on in the first of their batches (it is theirs alone), exactly as the dry run
    /// counts it. Judged against the batch, the first batch would retain it, and the later batch would find it
    /// referenced by the first subject's kept, detached rows (anonymized orders) and retain it for good. A
    /// subject under an exemption is never due, so what it uses is always retained.
    ///
    /// A row the policy has already anonymized (in an earlier batch or run, through this step or a twin) is not
    /// captured: the later subject's batch neither acts on it again nor counts it.
    ///
    /// Rows to delete are locked `FOR UPDATE`; rows to anonymize `FOR NO KEY UPDATE`, as strong as the update
    /// needs and no stronger: the live shop can still insert rows that reference them (an order to an address the
    /// batch anonymizes or finds shared) without waiting for the batch.
    func capture(_ step: ResolvedStep) -> PlannedStatement? { capture(step, lockFree: false) }

    /// The rows ``capture(_:)`` reaches, locked without waiting (`SKIP LOCKED`, the same strength), returning the
    /// `subject`s that point to a row another transaction holds (``StepPlan/captureLockFree``). One statement, with
    /// the capture's paths and filters: the rows reached and the rows locked are read on one snapshot and compared
    /// by their physical identity, so a row two subjects point to is held for both or for neither.
    func captureLockFree(_ step: ResolvedStep) -> PlannedStatement? { capture(step, lockFree: true) }

    private func capture(_ step: ResolvedStep, lockFree: Bool) -> PlannedStatement? {
        let group = twins(of: step)
        guard group.first?.step == step, let last = group.last else { return nil }
        var sql = SQLBuilder()
        let table = SQLIdentifier.quoted(schema: step.table.schema, name: step.table.name)
        let columns = identityColumns(step).map { SQLIdentifier.quoted($0.name) }
        // The pairs (subject, key of a row it points to): the key is read from the link on the table before the
        // row (`r` looks the rows up, once each), so the path stops one hop short of the row.
        let reached = group.map { twin -> String in
            let hops = twin.step.path
            let path = batchPath(&sql, Array(hops.dropLast()), lastAlias: "l", bound: false)
            let holder = hops.count == 1 ? "s" : "l"
            let links = (hops.last?.fromColumns ?? []).map { "\(holder).\(SQLIdentifier.quoted($0.name))" }
            let keys = links.enumerated().map { "\($1) AS k\($0 + 1)" }.joined(separator: ", ")
            let via = group.count > 1 ? ", \(twin.index) AS via" : ""
            let conditions = path.conditions + links.map { "\($0) IS NOT NULL" }
            return
                "SELECT \(key("s"))::text AS subject, \(keys)\(via) FROM \(path.items.joined(separator: ", ")) WHERE \(conditions.joined(separator: " AND "))"
        }
        let shared = shared(&sql, step, row: "x", set: .due)
        // The first twin that reaches the row from a due subject; the last when no other does (this batch's
        // subject reaches it along one of them). The batch's subjects are due: the first twin that reaches the
        // row from one of them (`v.via`) answers without a lookup, and only the twins before it are looked up.
        let cases = group.dropLast().map {
            "WHEN v.via = \($0.index) THEN \($0.index) "
                + "WHEN \(reachedCondition(&sql, $0.step.path, row: "x", set: .due)) THEN \($0.index)"
        }
        let counting = cases.isEmpty ? "\(last.index)" : "(CASE \(cases.joined(separator: " ")) ELSE \(last.index) END)"
        var conditions: [String] = []
        if let notProcessed = notProcessedRow(&sql, step, row: "x") {
            // A delete-or-anonymize deletes an unshared row whatever it holds; a shared one it anonymized is done.
            conditions.append(step.action.mayDelete ? "(NOT \(shared) OR \(notProcessed))" : notProcessed)
        }
        let keyList = columns.indices.map { "k\($0 + 1)" }
        let target =
            columns.count == 1 ? "x.\(columns[0])" : "(" + columns.map { "x.\($0)" }.joined(separator: ", ") + ")"
        let pairKey =
            keyList.count == 1 ? "p.\(keyList[0])" : "(" + keyList.map { "p.\($0)" }.joined(separator: ", ") + ")"
        let rowKey =
            keyList.count == 1 ? "r.\(keyList[0])" : "(" + keyList.map { "r.\($0)" }.joined(separator: ", ") + ")"
        let rowColumns = zip(columns, keyList).map { "x.\($0) AS \($1)" }.joined(separator: ", ")
        let keys = keyList.joined(separator: ", ")
        let rows: String
        if cases.isEmpty {
            rows = "FROM \(table) AS x\n    WHERE \(target) IN (SELECT \(keys) FROM p)"
        } else {
            let viaKey =
                keyList.count == 1 ? "v.\(keyList[0])" : "(" + keyList.map { "v.\($0)" }.joined(separator: ", ") + ")"
            rows = """
                FROM \(table) AS x, (SELECT \(keys), min(via) AS via FROM p GROUP BY \(keys)) AS v
                    WHERE \(target) = \(viaKey)
                """
        }
        let strength = step.action.mayDelete ? "FOR UPDATE" : "FOR NO KEY UPDATE"
        let filters = conditions.map { " AND \($0)" }.joined()
        if lockFree {
            let heldKey =
                keyList.count == 1 ? "a.\(keyList[0])" : "(" + keyList.map { "a.\($0)" }.joined(separator: ", ") + ")"
            return sql.statement(
                """
                WITH p AS (\(reached.joined(separator: "\nUNION ALL "))),
                a AS MATERIALIZED (SELECT \(rowColumns), x.tableoid AS t, x.ctid AS c
                    \(rows)\(filters)),
                l AS MATERIALIZED (SELECT x.tableoid AS t, x.ctid AS c
                    \(rows)\(filters)
                    \(strength) OF x SKIP LOCKED)
                SELECT DISTINCT p.subject FROM p JOIN a ON \(pairKey) = \(heldKey)
                WHERE NOT EXISTS (SELECT FROM l WHERE l.t = a.t AND l.c = a.c)
                """)
        }
        let text = """
            WITH p AS (\(reached.joined(separator: "\nUNION ALL "))),
            r AS (SELECT \(rowColumns), \(identity(step, alias: "x")) AS row, \(shared) AS shared, \(counting) AS step
                \(rows)\(filters)
                \(strength) OF x)
            SELECT DISTINCT p.subject, r.row, r.shared, r.step FROM p JOIN r ON \(pairKey) = \(rowKey)
            """
        return sql.statement(text)
    }

    /// Acts on captured rows by their key (`$rows`, a JSON array of objects), returning each changed row's identity.
    /// A hashing anonymize records each row it changed in `gallra.processed_row`, with the fingerprint of what it
    /// wrote (a record from before, for a row changed since, is replaced), under its first twin's path, so twins
    /// share one statement. Other anonymizations are recognised by the values they write, and a delete records
    /// nothing: the row is gone.
    func actOnRows(_ step: ResolvedStep, action: ResolvedStep.Action) -> PlannedStatement {
        var sql = SQLBuilder()
        let table = SQLIdentifier.quoted(schema: step.table.schema, name: step.table.name)
        let columns = identityColumns(step).map { SQLIdentifier.quoted($0.name) }
        let target =
            columns.count == 1 ? "x.\(columns[0])" : "(" + columns.map { "x.\($0)" }.joined(separator: ", ") + ")"
        let modify: String
        switch action {
        case .delete, .deleteOrAnonymize:
            modify = "DELETE FROM \(table) AS x"
        case .anonymize(let anonymizations):
            modify = "UPDATE \(table) AS x SET \(assignments(&sql, step, anonymizations))"
        }
        let rows = columns.map { "v.\($0)" }.joined(separator: ", ")
        let rowsParameter = sql.bind(.rows)
        var returning = "\(identity(step, alias: "x")) AS row"
        var record = ""
        if !action.mayDelete, !isIdempotent(step), let fingerprint = fingerprint(step, alias: "x") {
            returning += ", \(fingerprint) AS fingerprint"
            record = """
                ,
                r AS (INSERT INTO gallra.processed_row (policy, table_name, path, row_key, fingerprint, run)
                    SELECT \(sql.bind(.policyName)), \(sql.bind(.text(step.table.description))), \(sql.bind(.text(recordedPath(step)))), d.row, d.fingerprint, \(sql.bind(.runID))::uuid FROM d
                    ON CONFLICT (policy, table_name, path, row_key) DO UPDATE
                    SET fingerprint = EXCLUDED.fingerprint, run = EXCLUDED.run, processed_at = now())
                """
        }
        let text = """
            WITH d AS (\(modify)
                WHERE \(target) IN (SELECT \(rows) FROM jsonb_populate_recordset(NULL::\(table), \(rowsParameter)::jsonb) AS v)
                RETURNING \(returning))\(record)
            SELECT row FROM d
            """
        return sql.statement(text)
    }

    /// Whether row `row` of a referenced step's table is still referenced, through one of the foreign keys
    /// referencing the table, by a row that is not the data of a subject of `set`:
    /// - a subject-table row of a subject outside the set;
    /// - a row of a table an owned or subject step of this policy acts on, not reached from a subject of the
    ///   set along that step's path (for a delete: only steps that delete the row or null the reference count,
    ///   since any other row keeps referencing it);
    /// - any row of any other table (a store).
    func shared(_ sql: inout SQLBuilder, _ step: ResolvedStep, row: String, set: SubjectSet) -> String {
        guard !step.referencedBy.isEmpty else { return "false" }
        let parts = step.referencedBy.enumerated().map { number, reference -> String in
            let other = "o\(number + 1)"
            let joins = zip(reference.columns, reference.referencedColumns).map {
                "\(other).\(SQLIdentifier.quoted($0.name)) = \(row).\(SQLIdentifier.quoted($1.name))"
            }
            var belongs: [String] = []
            let dropped = droppedReferences(reference, to: step)
            for owner in dropped.steps {
                // A row that links to the subject key directly, of one of the batch's subjects (due, as the batch
                // is confirmed), is known to be theirs without looking the subject up.
                if set == .due, owner.path.isEmpty {
                    belongs.append("\(key(other)) IN (\(batchKeySet(&sql)))")
                } else if set == .due, owner.path.count == 1, let link = directLink(owner.path[0]) {
                    belongs.append("\(other).\(SQLIdentifier.quoted(link)) IN (\(batchKeySet(&sql)))")
                }
                belongs.append(reachedCondition(&sql, owner.path, row: other, set: set))
            }
            if dropped.subjectRow {
                if set == .due { belongs.append("\(key(other)) IN (\(batchKeySet(&sql)))") }
                belongs.append(isMember(&sql, set, alias: other))
            }
            let outside = belongs.isEmpty ? "" : " AND NOT (" + belongs.joined(separator: " OR ") + ")"
            return
                "EXISTS (SELECT FROM \(SQLIdentifier.quoted(schema: reference.table.schema, name: reference.table.name)) AS \(other) WHERE \(joins.joined(separator: " AND "))\(outside))"
        }
        return "(" + parts.joined(separator: " OR ") + ")"
    }

    /// The column of `hop`'s target table that holds the subject key, when `hop` goes from the subject key alone.
    func directLink(_ hop: JoinHop) -> String? {
        guard hop.from == resolved.subject.table, hop.fromColumns.map(\.name) == [resolved.subject.key.name],
            hop.toColumns.count == 1
        else { return nil }
        return hop.toColumns[0].name
    }

    /// The batch's keys as a subquery, for `expr IN (...)`: the server hashes it once per statement, where
    /// `= ANY` of an array compares with each key in turn.
    func batchKeySet(_ sql: inout SQLBuilder) -> String {
        "SELECT unnest(\(batchKeys(&sql)))"
    }

    /// The subjects' data that no longer shares a row of `target` through `reference` once they are processed:
    /// the rows of `steps` (owned or subject steps on the referencing table, each row reached from a subject along
    /// the step's path) and, when `subjectRow`, the subjects' own rows, which no step acts on (only when `target` is
    /// anonymized: a kept subject row pointing to a row that is only anonymized does not share it). A reference
    /// from any other row shares it. ``shared(_:_:row:set:)`` and the dry run's counts judge by this.
    func droppedReferences(
        _ reference: ForeignKeyReference, to target: ResolvedStep
    ) -> (steps: [ResolvedStep], subjectRow: Bool) {
        let steps = resolved.steps.filter { candidate in
            candidate.relation != .referenced && candidate.table == reference.table
                && keepsNoReference(candidate, reference: reference, target: target)
        }
        let subjectRow =
            reference.table == resolved.subject.table && !target.action.mayDelete
            && !steps.contains(where: { $0.relation == .subject })
        return (steps, subjectRow)
    }

    /// Whether a row `owner` acts on stops sharing a row of `target` once the batch is done: always for an
    /// anonymize of the target; for a delete (or delete-or-anonymize), only when `owner` deletes the row or nulls
    /// the reference. A delete-or-anonymize owner may keep a row (anonymized) that still references: only its
    /// nulling the reference counts.
    func keepsNoReference(_ owner: ResolvedStep, reference: ForeignKeyReference, target: ResolvedStep) -> Bool {
        guard target.action.mayDelete else { return true }
        switch owner.action {
        case .delete: return true
        case .anonymize(let columns), .deleteOrAnonymize(let columns):
            let nulled = Set(columns.filter { $0.strategy == .null }.map(\.column))
            return reference.columns.allSatisfy { nulled.contains($0) }
        }
    }

    // MARK: - Anonymization

    /// `"email" = <expression>, ...` for the target alias `x`.
    func assignments(_ sql: inout SQLBuilder, _ step: ResolvedStep, _ columns: [ResolvedAnonymization]) -> String {
        columns.map { "\(SQLIdentifier.quoted($0.column.name)) = \(strategyExpression(&sql, step, $0))" }
            .joined(separator: ", ")
    }

    /// The new value of one column of row `x`.
    ///
    /// `hash` and `fake_email` use `$salt`, a per-policy secret the executor derives from the audit key
    /// (HMAC(audit key, "hash:" + policy)): salted SHA-256 computed by the server, without pgcrypto, so the
    /// audit key itself never leaves gallra. The result is a keyed pseudonym, not anonymization.
    func strategyExpression(
        _ sql: inout SQLBuilder, _ step: ResolvedStep, _ column: ResolvedAnonymization, row: String = "x"
    ) -> String {
        let name = "\(row).\(SQLIdentifier.quoted(column.column.name))"
        let type = column.type
        switch column.strategy {
        case .null:
            return "NULL"
        case .redact, .set:
            let value = column.value.flatMap { SQLText.text(of: $0) }
            return "\(sql.bind(.text(value)))::text::\(type)"
        case .hash:
            if type == "bytea" {
                return "sha256(convert_to(\(sql.bind(.salt)), 'UTF8') || \(name))"
            }
            return "encode(sha256(convert_to(\(sql.bind(.salt)) || \(name)::text, 'UTF8')), 'hex')::\(type)"
        case .fakeEmail:
            // Unique per row: the hash covers the table, the column and the row's primary key (or, for a table
            // without one, the whole old row); 5 + 19 + 16 = 40 characters.
            let place = SQLText.literal("\(step.table).\(column.column.name):")
            let identity: String
            switch step.primaryKey {
            case .some(let key) where key.count == 1: identity = "\(row).\(SQLIdentifier.quoted(key[0].name))::text"
            case .some(let key) where !key.isEmpty:
                identity = "ROW(\(key.map { "\(row).\(SQLIdentifier.quoted($0.name))" }.joined(separator: ", ")))::text"
            default: identity = "\(row)::text"
            }
            return
                "(CASE WHEN \(name) IS NULL THEN NULL ELSE 'anon-' || substr(encode(sha256(convert_to(\(sql.bind(.salt)) || \(place) || \(identity), 'UTF8')), 'hex'), 1, 19) || '@example.invalid' END)::\(type)"
        case .truncate(let unit):
            return "date_trunc('\(unit.rawValue)', \(name))::\(type)"
        }
    }
}
