import GallraCore
import GallraPolicy

/// A dry run's counts: one read-only statement over every subject due at the instant, made of joins.
///
/// Every count is a semi-join or an anti-join over whole sets, which the server hashes once, instead of a
/// correlated subquery evaluated for every row of a data table (the due predicate per row, and again per reference
/// for the rows the subjects point to). `due` is a CTE the server inlines into each count (`NOT MATERIALIZED`): the
/// subject table's statistics then size each join. A materialized set has no statistics, and the server, guessing
/// 200 distinct keys, probed indexes row by row for hundreds of thousands of keys. Sets that are only counted or
/// anti-joined whole are materialized, so that they are computed once: the rows a step reaches (counted twice) and
/// the keys referenced from outside the subjects' data (shared by the steps on one table). No temporary table: a
/// dry run writes nothing and runs on a hot standby.
///
/// The numbers are the live run's: the same rule, exemptions and processed checks decide who is due; a step
/// reaches the same rows; a row the subjects point to is left out when ``capture(_:)`` leaves it out and is
/// retained when ``shared(_:_:row:set:)`` holds for it.
extension Planner {
    /// The counts of a dry run: one row per step, `step` (its index in apply order), `acted`, `retained` and
    /// `anonymized` (rows the step deletes or anonymizes, shared rows it keeps, and, for a delete-or-anonymize, the
    /// rows of `acted` it anonymizes because something still references them); and one row with `step` null, whose
    /// `acted` counts the due subjects (expiring), `retained` the exempted ones and `held` those a legal hold alone
    /// keeps (``countSubjects()``'s three parts). `held` is zero on the steps' rows.
    ///
    /// A delete-or-anonymize of owned rows (or of the subject row) keeps a row that a row of any table references,
    /// unless an earlier step of the policy deletes that referencing row (or nulls the reference) for a due subject:
    /// what the live run finds when the step runs, after the earlier steps of the batch.
    public func dryRunCounts() -> PlannedStatement {
        counts(oneSubject: false)
    }

    /// The counts of ``dryRunCounts()`` for the one subject in `$keys` (a jsonb array of one key's text): whether it
    /// is due (`step` null: `acted` 1 when due, `retained` 1 when exempted), and per step the rows a live run acts on
    /// and retains for it, as its audit record counts them. Sharing is judged against every due subject, as a live
    /// run does. A fourth column, `reference`, is null on those rows; the rows with a `reference` (an index into the
    /// step's ``ResolvedStep/referencedBy``) count in `retained` the retained rows that foreign key's rows still use.
    public func subjectCounts() -> PlannedStatement {
        counts(oneSubject: true)
    }

    func counts(oneSubject: Bool) -> PlannedStatement {
        var sql = SQLBuilder()
        var holds = [rule(&sql, alias: "s")]
        if let processed = notProcessed(&sql, alias: "s", overAll: true) { holds.append(processed) }
        let exempt = exempt(&sql, alias: "s")
        let held = held(&sql, alias: "s")
        var due = holds
        if let exempt { due.append("NOT \(exempt)") }
        due.append(notHeld(&sql, alias: "s", overAll: true))
        if oneSubject { holds.append(member(&sql, .batch, key: key("s"))) }
        let columns = dueColumns().map { "s.\(SQLIdentifier.quoted($0))" }.joined(separator: ", ")
        var ctes = [
            """
            subjects AS MATERIALIZED (
              SELECT \(exempt ?? "false") AS exempted, \(held) AS held FROM \(subjectTable) AS s
              WHERE \(holds.joined(separator: "\n    AND ")))
            """,
            """
            due AS NOT MATERIALIZED (
              SELECT \(columns) FROM \(subjectTable) AS s
              WHERE \(due.joined(separator: "\n    AND ")))
            """,
        ]
        // The subjects whose rows are counted: every due subject, or the one subject when it is due.
        let reach = oneSubject ? "mine" : "due"
        if oneSubject {
            ctes.append(
                "mine AS NOT MATERIALIZED (\n  SELECT d.* FROM due AS d WHERE \(member(&sql, .batch, key: key("d"))))")
        }
        // The columns after `retained` on a step's row: no reference, no subjects held.
        let noReference = (oneSubject ? ", NULL::integer" : "") + ", 0::bigint"
        var counts = [
            """
            SELECT NULL::integer AS step, count(*) FILTER (WHERE NOT exempted AND NOT held) AS acted,
              count(*) FILTER (WHERE exempted) AS retained, 0::bigint AS anonymized\(oneSubject ? ", NULL::integer AS reference" : ""),
              count(*) FILTER (WHERE held AND NOT exempted) AS held
            FROM subjects
            """
        ]
        // The rows referencing a table from outside the subjects' data, by CTE text: steps on one table share them.
        var outside: [String: String] = [:]
        for (index, step) in resolved.steps.enumerated() {
            let table = SQLIdentifier.quoted(schema: step.table.schema, name: step.table.name)
            if step.relation != .referenced, step.action.mayDelete, step.action.mayAnonymize {
                let kept = keptByReference(&sql, index, row: "x", from: reach)
                counts.append(
                    """
                    SELECT \(index), count(*), 0::bigint, count(*) FILTER (WHERE \(kept))\(noReference) FROM \(table) AS x
                    WHERE \(dueReaches(step.path, row: "x", from: reach))
                    """)
                continue
            }
            switch step.relation {
            case .subject:
                // The subject row of each due subject, once (the key is unique).
                counts.append(
                    "SELECT \(index), count(*) FILTER (WHERE NOT exempted AND NOT held), 0::bigint, 0::bigint\(noReference) FROM subjects"
                )
                continue
            case .owned:
                counts.append(
                    "SELECT \(index), count(*), 0::bigint, 0::bigint\(noReference) FROM \(table) AS x\nWHERE \(dueReaches(step.path, row: "x", from: reach))"
                )
                continue
            case .referenced:
                break
            }
            var keys: [String] = []
            for column in step.referencedBy.flatMap(\.referencedColumns).map(\.name) where !keys.contains(column) {
                keys.append(column)
            }
            var conditions = [dueReaches(step.path, row: "x", from: reach)]
            // A row already as an idempotent anonymization leaves it is recognised by its values, a test computed
            // for the rows reached only (in the select list: as a condition, the server would compute it for every
            // row of the table before the join); a hashing one's record is joined.
            // A delete-or-anonymize deletes an unshared row whatever it holds, so a hashing one's record is read for
            // every row reached.
            var pending = "true"
            if isIdempotent(step) {
                pending = notProcessedRow(&sql, step, row: "x") ?? pending
            } else if let notProcessed = notProcessedRowAmongMany(&sql, step, row: "x") {
                if step.action.mayDelete { pending = notProcessed } else { conditions.append(notProcessed) }
            }
            // A row an earlier twin reaches from a due subject counts under that twin. The twin's rows reached are
            // at hand when it has a set of them (twins share the table, so its keys): exactly the rows its path
            // reaches that no twin before it reaches, which this step excludes as well.
            for twin in earlierTwins(of: step) {
                if !keys.isEmpty {
                    let joins = keys.map {
                        "r\(twin.index).\(SQLIdentifier.quoted($0)) = x.\(SQLIdentifier.quoted($0))"
                    }
                    conditions.append(
                        "NOT EXISTS (SELECT FROM r\(twin.index) WHERE \(joins.joined(separator: " AND ")))")
                } else {
                    conditions.append("NOT \(dueReaches(twin.step.path, row: "x", from: reach))")
                }
            }
            let reached = conditions.joined(separator: "\n    AND ")
            guard !keys.isEmpty else {
                // No foreign key references the table: nothing shares a row (a delete-or-anonymize deletes them all).
                let acted = step.action.mayDelete ? "count(*)" : "count(*) FILTER (WHERE \(pending))"
                counts.append(
                    "SELECT \(index), \(acted), 0::bigint, 0::bigint\(noReference) FROM \(table) AS x\nWHERE \(reached)"
                )
                continue
            }
            // The rows reached, each once, and whether each still needs the step; those of them no row outside the
            // subjects' data references are acted on.
            let rows = "r\(index)"
            ctes.append(
                """
                \(rows) AS MATERIALIZED (
                  SELECT \(keys.map { "x.\(SQLIdentifier.quoted($0))" }.joined(separator: ", ")), \(pending) AS gallra_pending
                  FROM \(table) AS x
                  WHERE \(reached))
                """)
            // One set per referenced key: the keys rows outside the subjects' data reference through any foreign key
            // to it (`UNION`: each key once, so the anti-join hashes the fewest).
            var targets: [[ColumnName]] = []
            for reference in step.referencedBy where !targets.contains(reference.referencedColumns) {
                targets.append(reference.referencedColumns)
            }
            let unshared = targets.map { target -> String in
                let body = step.referencedBy.filter { $0.referencedColumns == target }
                    .map { referencesFromOutside($0, to: step) }.joined(separator: "\n  UNION ")
                let name: String
                if let known = outside[body] {
                    name = known
                } else {
                    name = "o\(outside.count + 1)"
                    outside[body] = name
                    ctes.append("\(name) AS MATERIALIZED (\n  \(body))")
                }
                let joins = target.map {
                    "\(name).\(SQLIdentifier.quoted($0.name)) = x.\(SQLIdentifier.quoted($0.name))"
                }
                return "NOT EXISTS (SELECT FROM \(name) WHERE \(joins.joined(separator: " AND ")))"
            }
            if step.action.mayDelete, step.action.mayAnonymize {
                // Unshared rows are deleted, whatever they hold; shared rows the step has not anonymized yet are.
                counts.append(
                    """
                    SELECT \(index), a.deleted + a.anonymized, 0::bigint, a.anonymized\(noReference)
                    FROM (SELECT count(*) FILTER (WHERE unshared) AS deleted,
                        count(*) FILTER (WHERE NOT unshared AND gallra_pending) AS anonymized
                      FROM (SELECT x.gallra_pending, \(unshared.joined(separator: "\n     AND ")) AS unshared FROM \(rows) AS x) AS u) AS a
                    """)
                continue
            }
            if oneSubject {
                // Which foreign keys hold the retained rows: per reference, the rows reached that it still uses.
                for (number, reference) in step.referencedBy.enumerated() {
                    let joins = reference.referencedColumns.map {
                        "u.\(SQLIdentifier.quoted($0.name)) = x.\(SQLIdentifier.quoted($0.name))"
                    }
                    counts.append(
                        """
                        SELECT \(index), 0::bigint, count(*), 0::bigint, \(number), 0::bigint FROM \(rows) AS x
                        WHERE x.gallra_pending AND EXISTS (SELECT FROM (\(referencesFromOutside(reference, to: step))) AS u
                          WHERE \(joins.joined(separator: " AND ")))
                        """)
                }
            }
            counts.append(
                """
                SELECT \(index), a.acted, t.reached - a.acted, 0::bigint\(noReference)
                FROM (SELECT count(*) FILTER (WHERE gallra_pending) AS reached FROM \(rows)) AS t,
                  (SELECT count(*) AS acted FROM \(rows) AS x
                   WHERE x.gallra_pending AND \(unshared.joined(separator: "\n     AND "))) AS a
                """)
        }
        return sql.statement(
            "WITH " + ctes.joined(separator: ",\n") + "\n" + counts.joined(separator: "\nUNION ALL\n"))
    }

    /// Whether row `row` of the table of delete-or-anonymize step `index` (owned rows or the subject row) is kept:
    /// some row references it that outlives the steps before it (``outlives(_:_:row:before:from:depth:)``). The live
    /// run's ``stillReferenced(_:row:)``, once the earlier steps have acted for the subjects of `subjects`.
    func keptByReference(
        _ sql: inout SQLBuilder, _ index: Int, row: String, from subjects: String, depth: Int = 1
    ) -> String {
        let step = resolved.steps[index]
        guard !step.referencedBy.isEmpty else { return "false" }
        let parts = step.referencedBy.enumerated().map { number, reference -> String in
            let other = "h\(depth)_\(number + 1)"
            var joins = zip(reference.columns, reference.referencedColumns).map {
                "\(other).\(SQLIdentifier.quoted($0.name)) = \(row).\(SQLIdentifier.quoted($1.name))"
            }
            if reference.table == step.table {
                joins.append("(\(other).tableoid, \(other).ctid) <> (\(row).tableoid, \(row).ctid)")
            }
            joins += outlives(&sql, reference, row: other, before: index, from: subjects, depth: depth)
            let table = SQLIdentifier.quoted(schema: reference.table.schema, name: reference.table.name)
            return "EXISTS (SELECT FROM \(table) AS \(other) WHERE \(joins.joined(separator: " AND ")))"
        }
        return "(" + parts.joined(separator: " OR ") + ")"
    }

    /// Conditions under which row `row` of `reference`'s table still references once the owned and subject steps
    /// before step `before` have acted for the subjects of `subjects`: no delete reached it, no anonymize nulled the
    /// reference, and a delete-or-anonymize that reached it kept it (recursively, over ever earlier steps).
    func outlives(
        _ sql: inout SQLBuilder, _ reference: ForeignKeyReference, row: String, before: Int, from subjects: String,
        depth: Int
    ) -> [String] {
        resolved.steps.enumerated().prefix(before).compactMap { index, earlier -> String? in
            guard earlier.relation != .referenced, earlier.table == reference.table else { return nil }
            let reached = dueReaches(earlier.path, row: row, from: subjects)
            switch earlier.action {
            case .delete:
                return "NOT \(reached)"
            case .anonymize(let columns):
                let nulled = Set(columns.filter { $0.strategy == .null }.map(\.column))
                return reference.columns.allSatisfy { nulled.contains($0) } ? "NOT \(reached)" : nil
            case .deleteOrAnonymize(let columns):
                let nulled = Set(columns.filter { $0.strategy == .null }.map(\.column))
                if reference.columns.allSatisfy({ nulled.contains($0) }) { return "NOT \(reached)" }
                let kept = keptByReference(&sql, index, row: row, from: subjects, depth: depth + 1)
                return "NOT (\(reached) AND NOT \(kept))"
            }
        }
    }

    /// The subject columns `due` returns: the key, and the columns the steps' paths start from.
    func dueColumns() -> [String] {
        var columns = [resolved.subject.key.name]
        for step in resolved.steps {
            for column in step.path.first?.fromColumns ?? [] where !columns.contains(column.name) {
                columns.append(column.name)
            }
        }
        return columns
    }

    /// Whether row `row` of a path's last table is reached from a due subject along `path`: a semi-join with `due`
    /// (the rows ``reachedCondition(_:_:row:set:)`` finds for ``SubjectSet/due``).
    func dueReaches(_ path: [JoinHop], row: String, from subjects: String = "due") -> String {
        guard !path.isEmpty else { return "EXISTS (SELECT FROM \(subjects) AS d WHERE \(key("d")) = \(key(row)))" }
        let joined = SQLPath(path, from: "d", prefix: "k", lastAlias: row)
        let from = (["\(subjects) AS d"] + joined.items).joined(separator: ", ")
        return "EXISTS (SELECT FROM \(from) WHERE \(joined.conditions(and: [])))"
    }

    /// The keys of `target`'s table that rows of `reference`'s table reference, except the due subjects' data that
    /// stops referencing them (``droppedReferences(_:to:)``): a row with such a key is shared. Columns are named
    /// after the referenced ones; each "is the subjects' data" condition is negated on its own, so that each is an
    /// anti-join.
    func referencesFromOutside(_ reference: ForeignKeyReference, to target: ResolvedStep) -> String {
        let columns = zip(reference.columns, reference.referencedColumns).map {
            "o.\(SQLIdentifier.quoted($0.name)) AS \(SQLIdentifier.quoted($1.name))"
        }
        let dropped = droppedReferences(reference, to: target)
        var conditions = dropped.steps.map { "NOT \(dueReaches($0.path, row: "o"))" }
        if dropped.subjectRow { conditions.append("NOT \(dueReaches([], row: "o"))") }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return
            "SELECT \(columns.joined(separator: ", ")) FROM \(SQLIdentifier.quoted(schema: reference.table.schema, name: reference.table.name)) AS o\(filter)"
    }

    /// ``notProcessedRow(_:_:row:)`` for a count over many rows: the record's key, read back into the table's
    /// column types, joins it to the row, and the exact check (identity text and fingerprint) runs only for a row
    /// with a record. Hashing every row's identity and fingerprint to probe the records would cost more than the
    /// count. (Equal identity texts hold equal values: a row's key reads back as itself.)
    func notProcessedRowAmongMany(_ sql: inout SQLBuilder, _ step: ResolvedStep, row: String) -> String? {
        guard let fingerprint = fingerprint(step, alias: row) else { return nil }
        let keys = identityColumns(step).map {
            "v.\(SQLIdentifier.quoted($0.name)) = \(row).\(SQLIdentifier.quoted($0.name))"
        }
        // `IS TRUE` keeps the exact check out of the join's hash keys: it filters the rows that share a key.
        return """
            NOT EXISTS (SELECT FROM gallra.processed_row AS pr, \
            jsonb_populate_record(NULL::\(SQLIdentifier.quoted(schema: step.table.schema, name: step.table.name)), pr.row_key::jsonb) AS v \
            WHERE pr.policy = \(sql.bind(.policyName)) AND pr.table_name = \(sql.bind(.text(step.table.description))) \
            AND pr.path = \(sql.bind(.text(recordedPath(step)))) AND \(keys.joined(separator: " AND ")) \
            AND (pr.row_key = \(identity(step, alias: row)) AND pr.fingerprint = \(fingerprint)) IS TRUE)
            """
    }
}
