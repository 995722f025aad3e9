import GallraCore
import GallraPolicy

/// What keeps `gallra.processed` and `gallra.processed_row` bounded: entries whose row is gone.
///
/// An entry of `processed` stops the policy from processing its subject again, and one of `processed_row` stops it
/// from hashing a row again; both only while their row exists. The planner matches an entry with its row by the
/// row's key as text (`s.key::text = p.subject_key`; `jsonb_build_object(...)::text = pr.row_key`), so an entry
/// whose key names no row holds nothing back. A row inserted later under the same key is another subject or row, not
/// the one processed. These statements delete such entries and nothing else: an entry whose row exists stays,
/// whatever the rule says of it now, since the rule may hold again.
///
/// Each statement looks at up to `$limit` entries after `$afterKey`, in key order, and probes the row of each by
/// the key cast back to the column's type (one index probe). Text that casts back to an equal key is the same key
/// (PostgreSQL's text output of a value reads back as the value), so a row the planner would match is always found.
/// Returns `last` (the last key looked at, null when there were none) and `pruned`.
extension Planner {
    /// Deletes this policy's entries of `gallra.processed` whose subject row is gone.
    public func pruneProcessed() -> PlannedStatement {
        var sql = SQLBuilder()
        let policy = sql.bind(.policyName)
        let after = sql.bind(.afterKey)
        let limit = sql.bind(.limit)
        let text = """
            WITH c AS (
                SELECT p.subject_key FROM gallra.processed AS p
                WHERE p.policy = \(policy) AND (\(after)::text IS NULL OR p.subject_key > \(after)::text)
                ORDER BY p.subject_key LIMIT \(limit)
            ),
            d AS (
                DELETE FROM gallra.processed AS p USING c
                WHERE p.policy = \(policy) AND p.subject_key = c.subject_key
                  AND NOT EXISTS (
                    SELECT FROM \(subjectTable) AS s WHERE \(key("s")) = c.subject_key::\(resolved.subject.keyType))
                RETURNING 1
            )
            SELECT (SELECT max(c.subject_key) FROM c) AS last, (SELECT count(*) FROM d)::bigint AS pruned
            """
        return sql.statement(text)
    }

    /// Deletes this policy's entries of `gallra.processed_row` whose row is gone: one statement per table and path
    /// a hashing step of the policy records its rows under (entries under a path no step of this version uses are
    /// left as they are).
    public func pruneProcessedRows() -> [PlannedStatement] {
        var seen: Set<[String]> = []
        var statements: [PlannedStatement] = []
        for step in resolved.steps
        where step.relation == .referenced && step.action.mayAnonymize && !isIdempotent(step) {
            let path = recordedPath(step)
            guard seen.insert([step.table.description, path]).inserted else { continue }
            var sql = SQLBuilder()
            let policy = sql.bind(.policyName)
            let table = sql.bind(.text(step.table.description))
            let recorded = sql.bind(.text(path))
            let after = sql.bind(.afterKey)
            let limit = sql.bind(.limit)
            let rowType = SQLIdentifier.quoted(schema: step.table.schema, name: step.table.name)
            let match = identityColumns(step).map {
                "x.\(SQLIdentifier.quoted($0.name)) = v.\(SQLIdentifier.quoted($0.name))"
            }
            let text = """
                WITH c AS (
                    SELECT pr.row_key FROM gallra.processed_row AS pr
                    WHERE pr.policy = \(policy) AND pr.table_name = \(table) AND pr.path = \(recorded)
                      AND (\(after)::text IS NULL OR pr.row_key > \(after)::text)
                    ORDER BY pr.row_key LIMIT \(limit)
                ),
                d AS (
                    DELETE FROM gallra.processed_row AS pr USING c
                    WHERE pr.policy = \(policy) AND pr.table_name = \(table) AND pr.path = \(recorded)
                      AND pr.row_key = c.row_key
                      AND NOT EXISTS (
                        SELECT FROM \(rowType) AS x, jsonb_populate_record(NULL::\(rowType), c.row_key::jsonb) AS v
                        WHERE \(match.joined(separator: " AND ")))
                    RETURNING 1
                )
                SELECT (SELECT max(c.row_key) FROM c) AS last, (SELECT count(*) FROM d)::bigint AS pruned
                """
            statements.append(sql.statement(text))
        }
        return statements
    }
}
