import GallraCore

/// Strategies against column types.
///
/// Columns that hold a reference (part of a foreign key, or a `via` link) take only `null`: it detaches the row
/// from what it referenced (the usual way to keep an anonymized order while deleting its customer). Any other
/// value would point the row at another row, or at none, breaking the foreign key. Columns that others
/// reference, primary-key columns and generated columns take no strategy at all.
extension PolicyValidator {
    mutating func checkAction(_ step: PendingStep) -> ResolvedStep.Action {
        let action = policy.dataPoints[step.dataPoint].action
        let columns = action.anonymizedColumns
        guard action != .delete else { return .delete }
        let prefix = "data[\(step.dataPoint)].anonymize"
        let table = step.table
        var resolved: [ResolvedAnonymization] = []
        for entry in columns {
            let path = entryPath(prefix, column: entry.column)
            guard let column = column(entry.column, of: table, at: path, what: "anonymize", key: true) else {
                continue
            }
            if let value = checkStrategy(
                entry.strategy, column: column, table: table, at: path, keptRowsOnly: action.mayDelete)
            {
                resolved.append(value)
            }
        }
        checkMatchFull(resolved, table: table, prefix: prefix)
        return action.mayDelete ? .deleteOrAnonymize(resolved) : .anonymize(resolved)
    }

    /// A `MATCH FULL` foreign key takes its columns all null or all set: nulling some of them fails every row
    /// that had them set.
    mutating func checkMatchFull(_ resolved: [ResolvedAnonymization], table: CatalogTable, prefix: String) {
        let nulled = Set(resolved.filter { $0.strategy == .null || $0.strategy == .set(.null) }.map(\.column.name))
        for key in table.foreignKeys where key.matchFull && key.columns.count > 1 {
            let missing = key.columns.filter { !nulled.contains($0) }
            guard let first = key.columns.first(where: nulled.contains), !missing.isEmpty else { continue }
            let names = missing.map { ColumnName($0) }
            error(
                "anonymize: \(key.name) is MATCH FULL over \(Self.columnList(table.name, key.columns.map { ColumnName($0) })): its columns must be all null or all set, so nulling \(ColumnName(first)) alone fails the key; also set \(names.map { "\($0): null" }.joined(separator: ", ")), or delete the rows",
                at: entryPath(prefix, column: ColumnName(first)))
        }
    }

    /// The CHECK constraints of `table` that read `column` and may refuse what `strategy` writes: the catalog
    /// knows only whether a one-column constraint holds for null and for the `redact` constant.
    func failingChecks(_ strategy: Strategy, column: CatalogColumn, table: CatalogTable) -> [CatalogCheck] {
        table.checks.filter { check in
            guard check.columns.contains(column.name) else { return false }
            switch strategy {
            case .null, .set(.null): return check.acceptsNull != true
            case .redact(nil): return check.acceptsRedaction != true
            default: return true
            }
        }
    }

    /// The resolved column, or nil after reporting why the strategy does not fit. `keptRowsOnly` for a
    /// delete-or-anonymize, whose anonymization applies to the rows it must keep: deleting them is no way out.
    mutating func checkStrategy(
        _ strategy: Strategy, column: CatalogColumn, table: CatalogTable, at path: String, keptRowsOnly: Bool = false
    ) -> ResolvedAnonymization? {
        guard let resolved = checkType(strategy, column: column, table: table, at: path, keptRowsOnly: keptRowsOnly)
        else { return nil }
        let orDelete = keptRowsOnly ? "" : ", or delete the rows"
        let name = ColumnName(column.name)
        func fail(_ message: String) -> ResolvedAnonymization? {
            error("anonymize: \(message)", at: path)
            return nil
        }
        if let check = failingChecks(strategy, column: column, table: table).first {
            let known: String
            switch strategy {
            case .null, .set(.null):
                known = check.acceptsNull == false ? "fails with \(name) null" : "may fail with \(name) null"
            case .redact(nil):
                known =
                    check.acceptsRedaction == false
                    ? "fails with the constant redact writes" : "may fail with the constant redact writes"
            default:
                known = "is an expression gallra cannot evaluate for \(strategy) before a run"
            }
            let allowed = [
                check.acceptsNull == true && column.isNullable ? "null" : nil,
                check.acceptsRedaction == true ? "redact" : nil,
            ].compactMap { $0 }
            let instead = allowed.isEmpty ? "" : "use \(Self.orList(allowed)) (which it allows), "
            return fail(
                "\(name) of \(table.name) is checked by \(check.name) (\(check.definition)), which \(known); a row that breaks it fails at run time. Instead \(instead)anonymize other columns\(orDelete)"
            )
        }
        return resolved
    }

    /// The resolved column, or nil after reporting why the strategy does not fit the column's type and keys.
    mutating func checkType(
        _ strategy: Strategy, column: CatalogColumn, table: CatalogTable, at path: String, keptRowsOnly: Bool
    ) -> ResolvedAnonymization? {
        let orDelete = keptRowsOnly ? "" : ", or delete the rows"
        let name = ColumnName(column.name)
        let type = column.type
        func fail(_ message: String) -> ResolvedAnonymization? {
            error("anonymize: \(message)", at: path)
            return nil
        }
        if column.isGenerated {
            return fail(
                "\(name) is a generated column of \(table.name); PostgreSQL computes it. Anonymize the columns it is computed from"
            )
        }
        if table.primaryKey?.contains(column.name) == true {
            return fail(
                "\(name) is part of the primary key of \(table.name); changing it would make the row another row. \(keptRowsOnly ? "Anonymize other columns" : "Delete the rows instead (delete: true), or anonymize other columns")"
            )
        }
        let referencing = catalog.foreignKeys(referencing: table.name).filter { referencing in
            referencing.foreignKey.referencedColumns.contains(column.name) && !isCopy(referencing.table)
        }
        if let first = referencing.first {
            let onUpdate = first.foreignKey.onUpdate
            let effect =
                onUpdate.blocksDelete
                ? "changing it would break those references"
                : "changing it would change those rows too (ON UPDATE \(onUpdate.rawValue))"
            return fail(
                "\(name) of \(table.name) is referenced by \(first.table.name) through \(first.foreignKey.name); \(effect). Anonymize other columns\(orDelete)"
            )
        }
        guard SQLTypeName.isCastable(type) else {
            return fail(
                "\(name) is of type \(type), whose name gallra does not write into SQL (only letters, digits, _, spaces, parentheses, dots, commas, double quotes and brackets). Rename the type, or anonymize other columns\(orDelete)"
            )
        }
        let isNull = strategy == .null || strategy == .set(.null)
        let outgoing = table.foreignKeys.first { $0.columns.contains(column.name) }
        let isVia = viaLinks[table.name]?.contains(column.name) == true
        if outgoing != nil || isVia, !isNull {
            let link =
                outgoing.map { "links \(table.name) to \($0.referencedTable) (\($0.name))" }
                ?? "links \(table.name) to the subject (via)"
            return fail(
                "\(name) \(link); only null may change it, which detaches the row. \(strategy) would point it at another row or break the reference"
            )
        }
        if isNull {
            guard column.isNullable else {
                return fail(
                    "\(name) is NOT NULL in \(table.name), so null cannot be written; use \(nonNullAlternative(column, table: table))\(orDelete)"
                )
            }
            return ResolvedAnonymization(
                column: name, type: type, strategy: strategy, value: nil, detaches: outgoing?.name)
        }
        let uniqueAlone = table.isUnique([column.name])
        func constantProblem(_ what: String) -> String {
            "\(what) writes the same value into \(name) of every anonymized row, but \(name) is unique in \(table.name), so the second row would fail; use fake_email or hash (unique per row), or null"
        }
        switch strategy {
        case .null:
            return nil  // handled above
        case .truncate(let unit):
            guard ColumnTypes.isDateOrTimestamp(column) else {
                return fail(
                    "truncate(\(unit.rawValue)) needs a date or timestamp column; \(name) is \(type). Use redact, null or set(VALUE)"
                )
            }
            return ResolvedAnonymization(column: name, type: type, strategy: strategy, value: nil, detaches: nil)
        case .fakeEmail:
            guard column.category == .string else {
                return fail("fake_email needs a text column; \(name) is \(type)")
            }
            if let length = column.maximumLength, length < 40 {
                return fail(
                    "fake_email writes addresses of up to 40 characters; \(name) is \(type) (at most \(length)). Widen the column, or use redact"
                )
            }
            return ResolvedAnonymization(column: name, type: type, strategy: strategy, value: nil, detaches: nil)
        case .hash:
            if ColumnTypes.isBytea(column) {
                return ResolvedAnonymization(column: name, type: type, strategy: strategy, value: nil, detaches: nil)
            }
            guard column.category == .string else {
                return fail("hash needs a text or bytea column; \(name) is \(type)")
            }
            if let length = column.maximumLength, length < 64 {
                return fail(
                    "hash writes 64 hexadecimal characters (HMAC-SHA-256); \(name) is \(type) (at most \(length)). Widen the column, or use redact"
                )
            }
            return ResolvedAnonymization(column: name, type: type, strategy: strategy, value: nil, detaches: nil)
        case .redact(nil):
            guard let constant = ColumnTypes.redactConstant(for: column) else {
                return fail(
                    "redact has no constant for \(name) (\(type)); use set(VALUE) with a valid value, or null")
            }
            if uniqueAlone { return fail(constantProblem("redact")) }
            return ResolvedAnonymization(
                column: name, type: type, strategy: strategy, value: constant, detaches: nil)
        case .redact(let text?):
            guard column.category == .string else {
                return fail(
                    "redact(\(text.quotedForMessage)) writes text; \(name) is \(type). Use redact without text for a constant of its type"
                )
            }
            if let problem = ColumnTypes.misfit(.string(text), for: column) { return fail(problem) }
            if uniqueAlone { return fail(constantProblem("redact")) }
            return ResolvedAnonymization(
                column: name, type: type, strategy: strategy, value: .string(text), detaches: nil)
        case .set(let value):
            if let problem = ColumnTypes.misfit(value, for: column) { return fail("set: \(problem)") }
            if uniqueAlone { return fail(constantProblem("set")) }
            return ResolvedAnonymization(column: name, type: type, strategy: strategy, value: value, detaches: nil)
        }
    }

    /// A strategy that fits a NOT NULL column, for the message.
    func nonNullAlternative(_ column: CatalogColumn, table: CatalogTable) -> String {
        let unique = table.isUnique([column.name])
        switch column.category {
        case .string: return unique ? "fake_email or hash (unique per row)" : "redact"
        case .dateTime: return ColumnTypes.isDateOrTimestamp(column) ? "truncate(year) or redact" : "redact"
        default: return unique ? "a strategy unique per row" : "redact or set(VALUE)"
        }
    }

    /// A partition's copy of its parent's foreign key: the parent's constraint covers it.
    func isCopy(_ table: CatalogTable) -> Bool {
        guard let parent = table.partitionOf else { return false }
        return catalog.tables[parent] != nil
    }
}
