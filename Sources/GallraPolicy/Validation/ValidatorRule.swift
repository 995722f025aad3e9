import GallraCore

/// The subject and the rule: the key that identifies a subject, and the column that dates it.
extension PolicyValidator {
    mutating func resolveSubject(_ table: CatalogTable) -> ResolvedSubject? {
        let key = policy.subject.key
        guard let column = column(key, of: table, at: "subject.key", what: "subject key") else { return nil }
        let isPrimaryKey = table.primaryKey == [key.name]
        let isUnique = table.uniqueKeys.contains([key.name])
        if !isPrimaryKey && !(isUnique && !column.isNullable) {
            let primary =
                table.primaryKey.map { "the primary key is (\($0.joined(separator: ", ")))" } ?? "it has no primary key"
            if isUnique {
                error(
                    "subject key \(key) is unique but nullable in \(table.name), so a subject could have no key; use the primary key, or make \(key) NOT NULL",
                    at: "subject.key")
            } else {
                error(
                    "subject key \(key) does not identify one row of \(table.name): it must be the primary key or a unique NOT NULL column (\(primary))",
                    at: "subject.key")
            }
            return nil
        }
        guard SQLTypeName.isCastable(column.type) else {
            error(
                "subject key \(key) is of type \(column.type), whose name gallra does not write into SQL (only letters, digits, _, spaces, parentheses, dots, commas, double quotes and brackets); use a key column of another type, or rename the type",
                at: "subject.key")
            return nil
        }
        return ResolvedSubject(
            table: table.name, key: key, keyType: column.type, keyCategory: column.category,
            isPartitioned: table.kind == .partitioned, estimatedRows: table.estimatedRows)
    }

    var subjectKey: ColumnName { policy.subject.key }

    // MARK: - Rule

    mutating func resolveRule(_ subject: CatalogTable) -> ResolvedRule? {
        switch policy.rule {
        case .inactiveFor(let period, .column(let name)):
            return columnRule(.inactiveFor, period, name, subject, at: "expires.activity", what: "activity")
        case .inactiveFor(let period, .latestRow(let tableName, let columnName, let via)):
            return relatedRule(
                .inactiveFor, period, table: tableName, column: columnName, via: via, subject: subject,
                prefix: "expires.activity", columnKey: "column", what: "activity")
        case .olderThan(let period, let name):
            return columnRule(.olderThan, period, name, subject, at: "expires.created", what: "created")
        case .after(let period, let name):
            return columnRule(.after, period, name, subject, at: "expires.event", what: "event")
        case .consentRevoked(let grace, .table(let tableName, let revokedAt, let via)):
            return relatedRule(
                .consentRevoked, grace, table: tableName, column: revokedAt, via: via, subject: subject,
                prefix: "expires.consent", columnKey: "revoked_at", what: "consent revoked_at")
        case .consentRevoked(let grace, .gallra):
            return registryRule(grace)
        case .onRequest:
            return requestRule()
        }
    }

    /// `on_request`: the rule reads gallra's erasure request queue (`gallra.erasure_request`, docs/requests.md),
    /// one probe of its unique index on the pending request per subject. Like the consent registry it is not looked
    /// up in the catalog: the engine migrates gallra's schema before any run.
    func requestRule() -> ResolvedRule {
        ResolvedRule(
            kind: .onRequest, period: RetentionPeriod(),
            table: QualifiedName(schema: "gallra", name: "erasure_request"),
            column: ColumnName("not_before"), columnType: "timestamp with time zone", path: [],
            index: "erasure_request_one_pending")
    }

    /// `consent: gallra`: the rule reads gallra's consent registry, which records consent only under a policy
    /// whose legal basis is consent (`docs/consent.md`).
    ///
    /// The registry is not looked up in the catalog: the engine migrates gallra's schema before any run, so
    /// `gallra.consent_event` exists whenever the plan is executed, and the catalog a policy is validated
    /// against need not show gallra's own schema.
    mutating func registryRule(_ grace: RetentionPeriod) -> ResolvedRule? {
        guard policy.legalBasis == .consent else {
            let stated = policy.legalBasis.map { "legal_basis: \($0.rawValue)" } ?? "no legal_basis"
            error(
                "consent: gallra reads gallra's consent registry, which records consent only under a policy with legal_basis: consent, and this policy states \(stated); add legal_basis: consent to the policy, or name your own consent table: consent: { table: TABLE, revoked_at: COLUMN }",
                at: "expires.consent")
            return nil
        }
        return ResolvedRule(
            kind: .consentRevoked, period: grace, table: QualifiedName(schema: "gallra", name: "consent_event"),
            column: ColumnName("recorded_at"), columnType: "timestamp with time zone", path: [],
            index: "consent_event_one_history")
    }

    mutating func timestampColumn(
        _ name: ColumnName, of table: CatalogTable, at path: String, what: String
    ) -> CatalogColumn? {
        guard let column = column(name, of: table, at: path, what: what) else { return nil }
        guard ColumnTypes.isDateOrTimestamp(column) else {
            error(
                "\(what): \(name) is \(column.type); it must be a date or timestamp column (timestamptz, timestamp or date)",
                at: path)
            return nil
        }
        return column
    }

    mutating func columnRule(
        _ kind: ResolvedRule.Kind, _ period: RetentionPeriod, _ name: ColumnName, _ subject: CatalogTable,
        at path: String, what: String
    ) -> ResolvedRule? {
        guard let column = timestampColumn(name, of: subject, at: path, what: what) else { return nil }
        let index = indexName(on: subject, leadingWith: [name.name])
        if index == nil {
            warnMissingIndex(
                on: subject, columns: [name], at: path,
                why: "finding the expiring subjects reads the whole of \(subject.name) on every run")
        }
        return ResolvedRule(
            kind: kind, period: period, table: subject.name, column: name, columnType: column.type, path: [],
            index: index)
    }

    mutating func relatedRule(
        _ kind: ResolvedRule.Kind, _ period: RetentionPeriod, table tableName: QualifiedName, column name: ColumnName,
        via: ColumnName?, subject: CatalogTable, prefix: String, columnKey: String, what: String
    ) -> ResolvedRule? {
        guard let related = table(tableName, at: prefix + ".table", what: "\(what) table", acted: false) else {
            return nil
        }
        need([.select], on: related, at: prefix + ".table", why: "to read the expiry rule")
        let column = timestampColumn(name, of: related, at: prefix + "." + columnKey, what: what)
        guard
            let hops = resolvePath(
                [subject, related], via: via, viaPath: prefix + ".via", tablePaths: [prefix + ".table"]),
            let column
        else { return nil }
        let hop = hops[0]
        recordViaLinks(hops)
        var index = indexName(on: related, leadingWith: hop.toColumns.map(\.name))
        if index == nil, hop.direction == .child {
            warnMissingIndex(
                on: related, columns: hop.toColumns + [name], at: via == nil ? prefix + ".table" : prefix + ".via",
                why: "finding each subject's latest row reads the whole of \(related.name)")
        } else if hop.direction == .parent {
            index = index ?? "primary key"
        }
        return ResolvedRule(
            kind: kind, period: period, table: related.name, column: name, columnType: column.type, path: hops,
            index: index)
    }
}
