import GallraPolicy

/// The SQL of one data point's step.
public struct StepPlan: Sendable, Hashable {
    /// The step's place in ``ResolvedPolicy/steps`` (the apply order).
    public var index: Int
    public var step: ResolvedStep
    /// Rows the subject owns, or the subject row: acts on the batch's subjects and returns `subject, rows`
    /// (rows per subject key). Nil for rows the subject points to.
    public var act: PlannedStatement?
    /// Rows the subject points to: identifies and locks them at batch start, returning `subject, row, shared`
    /// (`row` identifies the row by its referenced key as a JSON object; `shared` when something outside the
    /// batch's subjects' data still references it). Rows the policy anonymized before (in an earlier batch or
    /// run, recorded in `gallra.processed_row`) and that still hold what it wrote are left out.
    public var capture: PlannedStatement?
    /// Rows the subject points to: acts on the captured, unshared rows (`$rows`), returning `row` per row changed;
    /// an anonymize also records each row in `gallra.processed_row` (same statement, so same transaction).
    public var actOnRows: PlannedStatement?

    /// Whether the step deletes (else it anonymizes).
    public var deletes: Bool { step.action == .delete }
}

extension Planner {
    /// Every step's SQL, in apply order.
    public func stepPlans() -> [StepPlan] {
        resolved.steps.enumerated().map { index, step in
            switch step.relation {
            case .subject, .owned:
                return StepPlan(index: index, step: step, act: act(step), capture: nil, actOnRows: nil)
            case .referenced:
                return StepPlan(
                    index: index, step: step, act: nil, capture: capture(step), actOnRows: actOnRows(step))
            }
        }
    }

    // MARK: - Owned rows and the subject row

    /// `WITH d AS (DELETE|UPDATE ... RETURNING subject) SELECT subject, count(*)`: per-subject row counts only.
    func act(_ step: ResolvedStep) -> PlannedStatement {
        var sql = SQLBuilder()
        let table = SQLText.table(step.table)
        let modify: String
        if step.path.isEmpty {
            let member = member(&sql, .batch, key: key("x"))
            switch step.action {
            case .delete:
                modify = "DELETE FROM \(table) AS x WHERE \(member) RETURNING \(key("x"))::text AS subject"
            case .anonymize(let columns):
                let set = assignments(&sql, columns)
                modify = "UPDATE \(table) AS x SET \(set) WHERE \(member) RETURNING \(key("x"))::text AS subject"
            }
        } else {
            let path = SQLPath(step.path, from: "s", prefix: "j", lastAlias: "x")
            let using = (["\(subjectTable) AS s"] + path.items).joined(separator: ", ")
            switch step.action {
            case .delete:
                let member = member(&sql, .batch, key: key("s"))
                modify =
                    "DELETE FROM \(table) AS x USING \(using) WHERE \(path.conditions(and: [member])) RETURNING \(key("s"))::text AS subject"
            case .anonymize(let columns):
                let set = assignments(&sql, columns)
                let member = member(&sql, .batch, key: key("s"))
                modify =
                    "UPDATE \(table) AS x SET \(set) FROM \(using) WHERE \(path.conditions(and: [member])) RETURNING \(key("s"))::text AS subject"
            }
        }
        return sql.statement(
            "WITH d AS (\(modify))\nSELECT subject, count(*) AS rows FROM d GROUP BY subject")
    }

    /// Whether row `row` of a path's last table is reached from a subject of `set` along `path`.
    func reachedCondition(_ sql: inout SQLBuilder, _ path: [JoinHop], row: String, set: SubjectSet) -> String {
        guard !path.isEmpty else { return member(&sql, set, key: key(row)) }
        let joined = SQLPath(path, from: "s", prefix: "k", lastAlias: row)
        let from = (["\(subjectTable) AS s"] + joined.items).joined(separator: ", ")
        return
            "EXISTS (SELECT FROM \(from) WHERE \(joined.conditions(and: [member(&sql, set, key: key("s"))])))"
    }

    // MARK: - Rows the subject points to

    /// The columns identifying a row the subject points to: the referenced key of the path's last (parent) hop.
    func identityColumns(_ step: ResolvedStep) -> [ColumnName] {
        step.path.last?.toColumns ?? []
    }

    /// `jsonb_build_object('id', x."id")::text`.
    func identity(_ step: ResolvedStep, alias: String) -> String {
        let pairs = identityColumns(step).map { "\(SQLText.literal($0.name)), \(alias).\(SQLText.identifier($0.name))" }
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
        guard case .anonymize(let columns) = step.action else { return nil }
        let values = columns.map { "\(alias).\(SQLText.identifier($0.column.name))" }.joined(separator: ", ")
        return "encode(sha256(convert_to(jsonb_build_array(\(values))::text, 'UTF8')), 'hex')"
    }

    /// Whether the policy has not anonymized row `row` of a referenced step before, or has but the row no longer
    /// holds what it wrote (the application changed it since): nil for a delete (a deleted row is gone).
    func notProcessedRow(_ sql: inout SQLBuilder, _ step: ResolvedStep, row: String) -> String? {
        guard let fingerprint = fingerprint(step, alias: row) else { return nil }
        return """
            NOT EXISTS (SELECT FROM gallra.processed_row AS pr WHERE pr.policy = \(sql.bind(.policyName)) \
            AND pr.table_name = \(sql.bind(.text(step.table.description))) AND pr.path = \(sql.bind(.text(pathText(step)))) \
            AND pr.row_key = \(identity(step, alias: row)) AND pr.fingerprint = \(fingerprint))
            """
    }

    /// Identifies and locks the rows the batch's subjects point to, with whether each is shared.
    ///
    /// Sharing is judged against every subject due at the run's instant, not the batch alone: a row two due
    /// subjects use is acted on in the first of their batches (it is theirs alone), exactly as the dry run
    /// counts it. Judged against the batch, the first batch would retain it, and the later batch would find it
    /// referenced by the first subject's kept, detached rows (anonymized orders) and retain it for good. A
    /// subject under an exemption is never due, so what it uses is always retained.
    ///
    /// A row the policy anonymized in an earlier batch or run (`gallra.processed_row`) is not captured: the
    /// later subject's batch neither acts on it again (a second `hash` or `fake_email` would pseudonymise the
    /// pseudonym) nor counts it.
    func capture(_ step: ResolvedStep) -> PlannedStatement {
        var sql = SQLBuilder()
        let path = SQLPath(step.path, from: "s", prefix: "j", lastAlias: "x", bound: false)
        let from = (["\(subjectTable) AS s"] + path.items).joined(separator: ", ")
        let shared = shared(&sql, step, row: "x", set: .due)
        var conditions = [member(&sql, .batch, key: key("s"))]
        if let notProcessed = notProcessedRow(&sql, step, row: "x") { conditions.append(notProcessed) }
        let text = """
            SELECT \(key("s"))::text AS subject, \(identity(step, alias: "x")) AS row, \(shared) AS shared
            FROM \(from)
            WHERE \(path.conditions(and: conditions))
            FOR UPDATE OF x
            """
        return sql.statement(text)
    }

    /// Acts on captured rows by their key (`$rows`, a JSON array of objects), returning each changed row's identity.
    /// An anonymize records each row it changed in `gallra.processed_row`, with the fingerprint of what it wrote
    /// (a record from before, for a row changed since, is replaced). A delete records nothing: the row is gone.
    func actOnRows(_ step: ResolvedStep) -> PlannedStatement {
        var sql = SQLBuilder()
        let table = SQLText.table(step.table)
        let columns = identityColumns(step).map { SQLText.identifier($0.name) }
        let target =
            columns.count == 1 ? "x.\(columns[0])" : "(" + columns.map { "x.\($0)" }.joined(separator: ", ") + ")"
        let modify: String
        switch step.action {
        case .delete:
            modify = "DELETE FROM \(table) AS x"
        case .anonymize(let anonymizations):
            modify = "UPDATE \(table) AS x SET \(assignments(&sql, anonymizations))"
        }
        let rows = columns.map { "v.\($0)" }.joined(separator: ", ")
        let rowsParameter = sql.bind(.rows)
        var returning = "\(identity(step, alias: "x")) AS row"
        var record = ""
        if let fingerprint = fingerprint(step, alias: "x") {
            returning += ", \(fingerprint) AS fingerprint"
            record = """
                ,
                r AS (INSERT INTO gallra.processed_row (policy, table_name, path, row_key, fingerprint, run)
                    SELECT \(sql.bind(.policyName)), \(sql.bind(.text(step.table.description))), \(sql.bind(.text(pathText(step)))), d.row, d.fingerprint, \(sql.bind(.runID))::uuid FROM d
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
                "\(other).\(SQLText.identifier($0.name)) = \(row).\(SQLText.identifier($1.name))"
            }
            var belongs: [String] = []
            let dropped = droppedReferences(reference, to: step)
            for owner in dropped.steps {
                belongs.append(reachedCondition(&sql, owner.path, row: other, set: set))
            }
            if dropped.subjectRow {
                belongs.append(member(&sql, set, key: key(other)))
            }
            let outside = belongs.isEmpty ? "" : " AND NOT (" + belongs.joined(separator: " OR ") + ")"
            return
                "EXISTS (SELECT FROM \(SQLText.table(reference.table)) AS \(other) WHERE \(joins.joined(separator: " AND "))\(outside))"
        }
        return "(" + parts.joined(separator: " OR ") + ")"
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
            reference.table == resolved.subject.table && target.action != .delete
            && !steps.contains(where: { $0.relation == .subject })
        return (steps, subjectRow)
    }

    /// Whether a row `owner` acts on stops sharing a row of `target` once the batch is done: always for an
    /// anonymize of the target; for a delete, only when `owner` deletes the row or nulls the reference.
    func keepsNoReference(_ owner: ResolvedStep, reference: ForeignKeyReference, target: ResolvedStep) -> Bool {
        guard target.action == .delete else { return true }
        switch owner.action {
        case .delete: return true
        case .anonymize(let columns):
            let nulled = Set(columns.filter { $0.strategy == .null }.map(\.column))
            return reference.columns.allSatisfy { nulled.contains($0) }
        }
    }

    // MARK: - Anonymization

    /// `"email" = <expression>, ...` for the target alias `x`.
    func assignments(_ sql: inout SQLBuilder, _ columns: [ResolvedAnonymization]) -> String {
        columns.map { "\(SQLText.identifier($0.column.name)) = \(strategyExpression(&sql, $0))" }
            .joined(separator: ", ")
    }

    /// The new value of one column of row `x`.
    ///
    /// `hash` and `fake_email` use `$salt`, a per-policy secret the executor derives from the audit key
    /// (HMAC(audit key, "hash:" + policy)): salted SHA-256 computed by the server, without pgcrypto, so the
    /// audit key itself never leaves gallra. The result is a keyed pseudonym, not anonymization.
    func strategyExpression(_ sql: inout SQLBuilder, _ column: ResolvedAnonymization) -> String {
        let name = "x.\(SQLText.identifier(column.column.name))"
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
            // Unique per row: the hash covers the whole old row (its key included); 5 + 19 + 16 = 40 characters.
            return
                "(CASE WHEN \(name) IS NULL THEN NULL ELSE 'anon-' || substr(encode(sha256(convert_to(\(sql.bind(.salt)) || x::text, 'UTF8')), 'hex'), 1, 19) || '@example.invalid' END)::\(type)"
        case .truncate(let unit):
            return "date_trunc('\(unit.rawValue)', \(name))::\(type)"
        }
    }
}
