/// Validates a policy against the live catalog: names exist, types fit the strategies, links are unambiguous,
/// deletes are not blocked by kept rows, the role may do what the policy needs. Pure: the catalog is a value.
///
/// Returns every error and warning found (each with its place in the file and how to fix it) and, when there
/// is no error, the ``ResolvedPolicy`` the engine plans from.
public func validate(_ parsed: ParsedPolicy, against catalog: Catalog) -> Validation {
    var validator = PolicyValidator(parsed: parsed, catalog: catalog)
    let resolved = validator.run()
    let diagnostics = validator.diagnostics.sorted { lhs, rhs in
        let left = lhs.location.map { ($0.line, $0.column) } ?? (Int.max, 0)
        let right = rhs.location.map { ($0.line, $0.column) } ?? (Int.max, 0)
        return left < right
    }
    let hasErrors = diagnostics.contains { $0.severity == .error }
    return Validation(diagnostics: diagnostics, resolved: hasErrors ? nil : resolved)
}

extension ParsedPolicy {
    /// Validates the policy against the catalog (see ``validate(_:against:)``).
    public func validate(against catalog: Catalog) -> Validation {
        GallraPolicy.validate(self, against: catalog)
    }
}

/// A data point resolved to its tables and path, before ordering.
struct PendingStep {
    var dataPoint: Int
    var table: CatalogTable
    var path: [JoinHop]
    var action: ResolvedStep.Action
    var notes: [String] = []

    var relation: ResolvedStep.Relation {
        if path.isEmpty { return .subject }
        return path.allSatisfy { $0.direction == .child } ? .owned : .referenced
    }
    /// Whether the step deletes every row it reaches.
    var isDelete: Bool { if case .delete = action { true } else { false } }
    /// Whether the step deletes the rows nothing references and anonymizes the others.
    var isDeleteOrAnonymize: Bool { if case .deleteOrAnonymize = action { true } else { false } }
    /// Columns this step sets to NULL (in the rows it anonymizes).
    var nulledColumns: Set<String> {
        Set(action.columns.filter { $0.strategy == .null || $0.strategy == .set(.null) }.map(\.column.name))
    }
    /// Columns this step changes (in the rows it anonymizes).
    var changedColumns: Set<String> {
        Set(action.columns.map(\.column.name))
    }
}

struct PolicyValidator {
    let parsed: ParsedPolicy
    let catalog: Catalog
    var diagnostics: [PolicyDiagnostic] = []
    /// Privileges the policy needs, per table, with the first place that needs them.
    var needs: [QualifiedName: (privileges: Set<Privilege>, path: String, why: String)] = [:]
    var neededOrder: [QualifiedName] = []
    /// Missing-index warnings already given (table and columns).
    var warnedIndexes: Set<[String]> = []
    /// Columns used as `via` links without a foreign key: only `null` may change them.
    var viaLinks: [QualifiedName: Set<String>] = [:]

    var policy: Policy { parsed.policy }
    var source: PolicySourceMap { parsed.source }

    init(parsed: ParsedPolicy, catalog: Catalog) {
        self.parsed = parsed
        self.catalog = catalog
    }

    // MARK: - Reporting

    mutating func report(
        _ severity: PolicyDiagnostic.Severity, _ message: String, at path: String, key: Bool = false,
        lacksPrivilege: Bool = false
    ) {
        let location = key ? source.keyLocation(of: path) : source.location(of: path)
        diagnostics.append(
            PolicyDiagnostic(
                severity: severity, location: location, path: path, message: message, lacksPrivilege: lacksPrivilege))
    }

    mutating func error(_ message: String, at path: String, key: Bool = false, lacksPrivilege: Bool = false) {
        report(.error, message, at: path, key: key, lacksPrivilege: lacksPrivilege)
    }

    mutating func warning(_ message: String, at path: String, key: Bool = false) {
        report(.warning, message, at: path, key: key)
    }

    mutating func need(_ privileges: Set<Privilege>, on table: CatalogTable, at path: String, why: String) {
        if var existing = needs[table.name] {
            existing.privileges.formUnion(privileges)
            needs[table.name] = existing
        } else {
            needs[table.name] = (privileges, path, why)
            neededOrder.append(table.name)
        }
    }

    /// The path of a column entry (`data[2].anonymize.Email` for the column `email`), as the source map keys it.
    func entryPath(_ prefix: String, column: ColumnName) -> String {
        let start = prefix + "."
        for key in source.entries.keys.sorted() where key.hasPrefix(start) {
            let rest = String(key.dropFirst(start.count))
            if let name = try? ColumnName(parsing: rest), name == column { return key }
            if rest == column.name { return key }
        }
        return start + column.name
    }

    // MARK: - The run

    mutating func run() -> ResolvedPolicy? {
        guard let subjectTable = table(policy.subject.table, at: "subject.table", what: "subject table", acted: true)
        else {
            // Without the subject table no link can be resolved; report the names that can still be checked.
            for (index, point) in policy.dataPoints.enumerated() {
                _ = table(point.table, at: "data[\(index)].table", what: "data point table", acted: true)
            }
            return nil
        }
        let subject = resolveSubject(subjectTable)
        need([.select, .update], on: subjectTable, at: "subject.table", why: "to lock expiring subjects (FOR UPDATE)")
        let rule = resolveRule(subjectTable)
        var exemptions: [ResolvedExemption] = []
        for (index, exemption) in policy.exemptions.enumerated() {
            if let resolved = resolveExemption(exemption, index: index, subjectTable: subjectTable) {
                exemptions.append(resolved)
            }
        }
        var pending: [PendingStep] = []
        var allResolved = true
        for (index, point) in policy.dataPoints.enumerated() {
            if let step = resolveDataPoint(point, index: index, subjectTable: subjectTable) {
                pending.append(step)
            } else {
                allResolved = false
            }
        }
        for index in pending.indices {
            pending[index].action = checkAction(pending[index])
        }
        let guards = resolveCollection(pending, subjectTable: subjectTable)
        checkPrivileges()
        guard allResolved, let subject, let rule, !diagnostics.contains(where: { $0.severity == .error }) else {
            return nil
        }
        checkDeletes(&pending)
        guard let steps = order(pending) else { return nil }
        checkBufferPool(steps, subjectTable: subjectTable)
        return ResolvedPolicy(
            policy: policy, subject: subject, rule: rule, exemptions: exemptions, steps: steps, guards: guards)
    }
}
