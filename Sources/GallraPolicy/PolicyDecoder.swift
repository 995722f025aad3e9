/// Reads the policy document shape (docs/policy-language.md) from document nodes, collecting every error
/// it can find instead of stopping at the first, and recording where each entry was written.
struct PolicyDecoder {
    var file: String?
    var diagnostics: [PolicyDiagnostic] = []
    var entries: [String: PolicySourceMap.Entry] = [:]

    init(file: String?) {
        self.file = file
    }

    var sourceMap: PolicySourceMap { PolicySourceMap(file: file, entries: entries) }

    // MARK: - Reporting

    mutating func error(_ message: String, at location: SourceLocation?, path: String) {
        diagnostics.append(PolicyDiagnostic(severity: .error, location: location, path: path, message: message))
    }

    mutating func error(_ message: String, at node: DocumentNode, path: String) {
        error(message, at: node.location, path: path)
    }

    static func child(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }
    static func item(_ path: String, _ index: Int) -> String { "\(path)[\(index)]" }

    // MARK: - Shapes

    /// The entries of a mapping whose keys must come from `allowed`; unknown keys are reported with a suggestion.
    struct Fields {
        var values: [String: DocumentNode] = [:]
        var keyLocations: [String: SourceLocation] = [:]
        var location: SourceLocation?
        var path: String
        /// Allowed keys suggested for misspelt ones: their absence is not reported a second time.
        var suggested: Set<String> = []

        subscript(key: String) -> DocumentNode? { values[key] }
        func has(_ key: String) -> Bool { values[key] != nil }
        func path(_ key: String) -> String { PolicyDecoder.child(path, key) }
        func keyLocation(_ key: String) -> SourceLocation? { keyLocations[key] ?? location }
    }

    mutating func fields(_ node: DocumentNode, path: String, what: String, allowed: [String], example: String)
        -> Fields?
    {
        guard case .mapping(let pairs) = node.kind else {
            error("\(what): expected a mapping like \(example), got \(node.kindDescription)", at: node, path: path)
            return nil
        }
        var fields = Fields(location: node.location, path: path)
        for (key, value) in pairs {
            guard case .scalar(let name, _) = key.kind else {
                error(
                    "\(what): keys are plain words like \(allowed.first ?? "table"), not \(key.kindDescription)",
                    at: key, path: path)
                continue
            }
            guard allowed.contains(name) else {
                let hint = Suggestions.didYouMean(name, among: allowed)
                if let suggestion = Suggestions.closest(to: name, among: allowed) {
                    fields.suggested.insert(suggestion)
                }
                let options = hint.isEmpty ? "; \(what) takes \(allowed.joined(separator: ", "))" : hint
                error("\(name): unknown key in \(what)\(options)", at: key, path: Self.child(path, name))
                continue
            }
            fields.values[name] = value
            if let location = key.location { fields.keyLocations[name] = location }
            if let valueLocation = value.location {
                entries[Self.child(path, name)] = PolicySourceMap.Entry(key: key.location, value: valueLocation)
            }
        }
        return fields
    }

    mutating func missing(_ key: String, in fields: Fields, what: String, example: String) {
        guard !fields.suggested.contains(key) else { return }
        error("\(what): missing key \(key); for example \(example)", at: fields.location, path: fields.path(key))
    }

    mutating func list(_ node: DocumentNode, path: String, what: String) -> [DocumentNode]? {
        guard case .sequence(let items) = node.kind else {
            error(
                "\(what): expected a list (entries starting with \"- \"), got \(node.kindDescription)", at: node,
                path: path)
            return nil
        }
        for (index, item) in items.enumerated() {
            if let location = item.location {
                entries[Self.item(path, index)] = PolicySourceMap.Entry(key: nil, value: location)
            }
        }
        return items
    }

    /// Text of a scalar; plain numbers and booleans are taken as their text.
    mutating func text(_ node: DocumentNode, path: String, what: String) -> String? {
        guard case .scalar(let text, let plain) = node.kind else {
            error("\(what): expected text, got \(node.kindDescription)", at: node, path: path)
            return nil
        }
        if plain, Scalar(resolving: text, plain: true) == .null {
            error("\(what): a value is missing", at: node, path: path)
            return nil
        }
        return text
    }

    mutating func table(_ node: DocumentNode, path: String, what: String) -> QualifiedName? {
        guard let text = text(node, path: path, what: what) else { return nil }
        do {
            return try QualifiedName(parsing: text)
        } catch {
            self.error("\(what): \(error.message)", at: node, path: path)
            return nil
        }
    }

    mutating func column(_ node: DocumentNode, path: String, what: String) -> ColumnName? {
        guard let text = text(node, path: path, what: what) else { return nil }
        do {
            return try ColumnName(parsing: text)
        } catch {
            self.error("\(what): \(error.message)", at: node, path: path)
            return nil
        }
    }

    mutating func period(_ node: DocumentNode, path: String, what: String) -> RetentionPeriod? {
        guard let text = text(node, path: path, what: what) else { return nil }
        do {
            return try RetentionPeriod(parsing: text)
        } catch {
            self.error("\(what): \(error.message)", at: node, path: path)
            return nil
        }
    }

    mutating func scalar(_ node: DocumentNode, path: String, what: String) -> Scalar? {
        guard case .scalar(let text, let plain) = node.kind else {
            error(
                "\(what): expected a single value (text, number, true/false), got \(node.kindDescription)", at: node,
                path: path)
            return nil
        }
        return Scalar(resolving: text, plain: plain)
    }

    mutating func positiveInteger(_ node: DocumentNode, path: String, what: String, maximum: Int) -> Int? {
        if case .scalar(let text, true) = node.kind, case .integer(let value) = Scalar(resolving: text, plain: true),
            value > 0, value <= maximum
        {
            return Int(value)
        }
        error(
            "\(what): expected a positive integer up to \(maximum), got \(node.kindDescription)", at: node, path: path)
        return nil
    }

    // MARK: - Policy

    static let policyKeys = [
        "policy", "description", "state", "subject", "expires", "except", "schedule", "data", "limits",
    ]

    mutating func policy(_ node: DocumentNode) -> Policy? {
        if let location = node.location { entries[""] = PolicySourceMap.Entry(key: nil, value: location) }
        guard
            let fields = fields(
                node, path: "", what: "policy document", allowed: Self.policyKeys,
                example: "policy: inactive-customers")
        else { return nil }
        var complete = true

        var name: PolicyName?
        if let node = fields["policy"] {
            if let text = text(node, path: "policy", what: "policy") {
                do {
                    name = try PolicyName(text)
                } catch {
                    self.error("policy: \(error.message)", at: node, path: "policy")
                }
            }
        } else {
            missing("policy", in: fields, what: "policy document", example: "policy: inactive-customers (the name)")
        }
        complete = complete && name != nil

        var description: String?
        if let node = fields["description"] {
            description = text(node, path: "description", what: "description")
        }

        var state = Policy.State.draft
        if let node = fields["state"], let text = text(node, path: "state", what: "state") {
            if let value = Policy.State(rawValue: text) {
                state = value
            } else {
                let names = Policy.State.allCases.map(\.rawValue)
                error(
                    "state: \(text.quotedForMessage) is not a state\(Suggestions.didYouMean(text, among: names)); use draft, active or disabled",
                    at: node, path: "state")
                complete = false
            }
        }

        var subject: Subject?
        if let node = fields["subject"] {
            subject = self.subject(node, path: "subject")
        } else {
            missing(
                "subject", in: fields, what: "policy document", example: "subject: { table: shop.customer, key: id }")
        }
        complete = complete && subject != nil

        var rule: Rule?
        if let node = fields["expires"] {
            rule = self.rule(node, path: "expires")
        } else {
            missing(
                "expires", in: fields, what: "policy document",
                example: "expires: { inactive_for: 1 year, activity: last_seen_at }")
        }
        complete = complete && rule != nil

        var exemptions: [Exemption] = []
        if let node = fields["except"] {
            if let items = list(node, path: "except", what: "except") {
                for (index, item) in items.enumerated() {
                    if let exemption = exemption(item, path: Self.item("except", index)) {
                        exemptions.append(exemption)
                    } else {
                        complete = false
                    }
                }
            } else {
                complete = false
            }
        }

        var schedule: String?
        if let node = fields["schedule"] {
            schedule = text(node, path: "schedule", what: "schedule")
            complete = complete && schedule != nil
        }

        var dataPoints: [DataPoint] = []
        if let node = fields["data"] {
            if let items = list(node, path: "data", what: "data") {
                if items.isEmpty {
                    error(
                        "data: the list is empty; name at least one table, e.g. - { table: shop.customer, delete: true }",
                        at: node, path: "data")
                    complete = false
                }
                for (index, item) in items.enumerated() {
                    if let point = dataPoint(item, path: Self.item("data", index)) {
                        dataPoints.append(point)
                    } else {
                        complete = false
                    }
                }
            } else {
                complete = false
            }
        } else {
            missing(
                "data", in: fields, what: "policy document",
                example: "data: [ { table: shop.customer, delete: true } ]")
            complete = false
        }

        var limits = Limits()
        if let node = fields["limits"] {
            if let value = self.limits(node, path: "limits") { limits = value } else { complete = false }
        }

        guard complete, let name, let subject, let rule else { return nil }
        return Policy(
            name: name, description: description, state: state, subject: subject, rule: rule,
            exemptions: exemptions, schedule: schedule, dataPoints: dataPoints, limits: limits)
    }

    mutating func subject(_ node: DocumentNode, path: String) -> Subject? {
        let example = "{ table: shop.customer, key: id }"
        guard let fields = fields(node, path: path, what: "subject", allowed: ["table", "key"], example: example) else {
            return nil
        }
        var table: QualifiedName?
        var key: ColumnName?
        if let node = fields["table"] {
            table = self.table(node, path: fields.path("table"), what: "subject table")
        } else {
            missing("table", in: fields, what: "subject", example: "subject: \(example)")
        }
        if let node = fields["key"] {
            key = column(node, path: fields.path("key"), what: "subject key")
        } else {
            missing(
                "key", in: fields, what: "subject", example: "subject: \(example) (the column identifying one subject)")
        }
        guard let table, let key else { return nil }
        return Subject(table: table, key: key)
    }

    // MARK: - Rule

    /// The kinds of rule `expires:` takes, by their key; each reads its date from a companion key.
    enum RuleKind: String, CaseIterable {
        case inactiveFor = "inactive_for"
        case olderThan = "older_than"
        case after
        case consentRevoked = "consent_revoked"

        /// The key that says where the rule's date is read.
        var companion: String {
            switch self {
            case .inactiveFor: "activity"
            case .olderThan: "created"
            case .after: "event"
            case .consentRevoked: "consent"
            }
        }

        var companionExample: String {
            switch self {
            case .inactiveFor: "activity: last_seen_at"
            case .olderThan: "created: created_at"
            case .after: "event: employment_ended_at"
            case .consentRevoked: "consent: { table: crm.consent, revoked_at: revoked_at }"
            }
        }
    }

    mutating func rule(_ node: DocumentNode, path: String) -> Rule? {
        guard
            let fields = fields(
                node, path: path, what: "expires",
                allowed: RuleKind.allCases.map(\.rawValue) + RuleKind.allCases.map(\.companion),
                example: "{ inactive_for: 1 year, activity: last_seen_at }")
        else { return nil }
        let given = RuleKind.allCases.filter { fields.has($0.rawValue) }
        guard let kind = given.first else {
            guard fields.suggested.isDisjoint(with: RuleKind.allCases.map(\.rawValue)) else { return nil }
            error(
                "expires: missing the rule; give one of inactive_for, older_than, after or consent_revoked, e.g. inactive_for: 1 year",
                at: fields.location, path: path)
            return nil
        }
        guard given.count == 1 else {
            error(
                "expires: \(given.map(\.rawValue).joined(separator: " and ")) given together; a policy has one rule, so split it into one policy per rule",
                at: fields.keyLocation(given[1].rawValue), path: fields.path(given[1].rawValue))
            return nil
        }
        let companion = kind.companion
        var ok = true
        var wrongCompanion = false
        for other in RuleKind.allCases where other != kind && fields.has(other.companion) {
            wrongCompanion = true
            error(
                "\(other.companion): belongs with \(other.rawValue), not \(kind.rawValue); for \(kind.rawValue) write \(kind.companionExample)",
                at: fields.keyLocation(other.companion), path: fields.path(other.companion))
            ok = false
        }
        let period = self.period(fields[kind.rawValue]!, path: fields.path(kind.rawValue), what: kind.rawValue)
        guard let companionNode = fields[companion] else {
            guard !fields.suggested.contains(companion), !wrongCompanion else { return nil }
            error(
                "expires: \(kind.rawValue) needs \(companion); for example \(kind.companionExample)",
                at: fields.keyLocation(kind.rawValue), path: fields.path(companion))
            return nil
        }
        let companionPath = fields.path(companion)
        guard ok, let period else {
            // Still look at the companion so that its errors are reported too.
            _ = ruleCompanion(kind, companionNode, path: companionPath, period: RetentionPeriod(days: 1))
            return nil
        }
        return ruleCompanion(kind, companionNode, path: companionPath, period: period)
    }

    private mutating func ruleCompanion(_ kind: RuleKind, _ node: DocumentNode, path: String, period: RetentionPeriod)
        -> Rule?
    {
        switch kind {
        case .inactiveFor:
            if case .mapping = node.kind {
                let example = "{ table: shop.order, column: placed_at }"
                guard
                    let fields = fields(
                        node, path: path, what: "activity", allowed: ["table", "column", "via"], example: example)
                else { return nil }
                var table: QualifiedName?
                var column: ColumnName?
                var via: ColumnName?
                var ok = true
                if let node = fields["table"] {
                    table = self.table(node, path: fields.path("table"), what: "activity table")
                } else {
                    missing("table", in: fields, what: "activity", example: "activity: \(example)")
                }
                if let node = fields["column"] {
                    column = self.column(node, path: fields.path("column"), what: "activity column")
                } else {
                    missing("column", in: fields, what: "activity", example: "activity: \(example)")
                }
                if let node = fields["via"] {
                    via = self.column(node, path: fields.path("via"), what: "activity via")
                    ok = via != nil
                }
                guard ok, let table, let column else { return nil }
                return .inactiveFor(period, activity: .latestRow(table: table, column: column, via: via))
            }
            guard let column = column(node, path: path, what: "activity") else { return nil }
            return .inactiveFor(period, activity: .column(column))
        case .olderThan:
            guard let column = column(node, path: path, what: "created") else { return nil }
            return .olderThan(period, created: column)
        case .after:
            guard let column = column(node, path: path, what: "event") else { return nil }
            return .after(period, event: column)
        case .consentRevoked:
            let example = "{ table: crm.consent, revoked_at: revoked_at, via: customer_id }"
            if case .scalar(let text, _) = node.kind {
                guard text == "gallra" else {
                    error(
                        "consent: \(text.quotedForMessage) is not a consent source; write consent: gallra (gallra's own consent table) or consent: \(example)",
                        at: node, path: path)
                    return nil
                }
                return .consentRevoked(grace: period, consent: .gallra)
            }
            guard
                let fields = fields(
                    node, path: path, what: "consent", allowed: ["table", "revoked_at", "via"], example: example)
            else { return nil }
            var table: QualifiedName?
            var revokedAt: ColumnName?
            var via: ColumnName?
            var ok = true
            if let node = fields["table"] {
                table = self.table(node, path: fields.path("table"), what: "consent table")
            } else {
                missing("table", in: fields, what: "consent", example: "consent: \(example)")
            }
            if let node = fields["revoked_at"] {
                revokedAt = column(node, path: fields.path("revoked_at"), what: "consent revoked_at")
            } else {
                missing("revoked_at", in: fields, what: "consent", example: "consent: \(example)")
            }
            if let node = fields["via"] {
                via = column(node, path: fields.path("via"), what: "consent via")
                ok = via != nil
            }
            guard ok, let table, let revokedAt else { return nil }
            return .consentRevoked(grace: period, consent: .table(table, revokedAt: revokedAt, via: via))
        }
    }

    // MARK: - Exemptions

    /// The conditions an exemption puts on a column, by their key.
    enum PredicateKind: String, CaseIterable {
        case `is`, equals, `in`
        case notIn = "not_in"
    }

    static let predicateKeys = PredicateKind.allCases.map(\.rawValue)

    mutating func exemption(_ node: DocumentNode, path: String) -> Exemption? {
        let example = "{ column: legal_hold, is: true } or { exists: shop.order, where: { status: open } }"
        if case .mapping(let pairs) = node.kind,
            pairs.contains(where: { if case .scalar("exists", _) = $0.key.kind { true } else { false } })
        {
            guard
                let fields = fields(
                    node, path: path, what: "exemption", allowed: ["exists", "through", "via", "where"],
                    example: example)
            else { return nil }
            var ok = true
            let table = self.table(fields["exists"]!, path: fields.path("exists"), what: "exists")
            var through: [QualifiedName] = []
            if let node = fields["through"] {
                if let tables = self.through(node, path: fields.path("through")) {
                    through = tables
                } else {
                    ok = false
                }
            }
            var via: ColumnName?
            if let node = fields["via"] {
                via = column(node, path: fields.path("via"), what: "via")
                ok = ok && via != nil
            }
            var conditions: [Exemption.ColumnCondition] = []
            if let node = fields["where"] {
                let wherePath = fields.path("where")
                if case .mapping(let pairs) = node.kind {
                    for (key, value) in pairs {
                        guard case .scalar(let name, _) = key.kind else {
                            error("where: keys are column names, not \(key.kindDescription)", at: key, path: wherePath)
                            ok = false
                            continue
                        }
                        let conditionPath = Self.child(wherePath, name)
                        if let location = value.location {
                            entries[conditionPath] = PolicySourceMap.Entry(key: key.location, value: location)
                        }
                        let column = self.column(key, path: conditionPath, what: "where")
                        let predicate = wherePredicate(value, path: conditionPath)
                        if let column, let predicate {
                            conditions.append(Exemption.ColumnCondition(column: column, predicate: predicate))
                        } else {
                            ok = false
                        }
                    }
                    var columns: Set<ColumnName> = []
                    for condition in conditions where !columns.insert(condition.column).inserted {
                        error(
                            "where: column \(condition.column) is given twice; combine the conditions into one",
                            at: node, path: wherePath)
                        ok = false
                    }
                    conditions.sort { $0.column < $1.column }
                    if pairs.isEmpty {
                        error(
                            "where: empty; remove it or name a column, e.g. where: { status: open }", at: node,
                            path: wherePath)
                        ok = false
                    }
                } else {
                    error(
                        "where: expected a mapping of columns like { status: { in: [open, paid] } }, got \(node.kindDescription)",
                        at: node, path: wherePath)
                    ok = false
                }
            }
            guard ok, let table else { return nil }
            return .relatedExists(table: table, through: through, via: via, conditions: conditions)
        }
        guard
            let fields = fields(
                node, path: path, what: "exemption", allowed: ["column", "exists"] + Self.predicateKeys,
                example: example)
        else { return nil }
        guard let columnNode = fields["column"] else {
            error(
                "exemption: give column: (a column of the subject) or exists: (a related table); for example \(example)",
                at: fields.location, path: path)
            return nil
        }
        let column = self.column(columnNode, path: fields.path("column"), what: "exemption column")
        let given = PredicateKind.allCases.filter { fields.has($0.rawValue) }
        guard given.count == 1 else {
            if given.isEmpty {
                error(
                    "exemption: missing the condition on \(columnNode.kindDescription); add one of is, equals, in, not_in, e.g. is: true",
                    at: fields.location, path: path)
            } else {
                error(
                    "exemption: \(given.map(\.rawValue).joined(separator: " and ")) given together; use one condition per exemption (list several exemptions instead)",
                    at: fields.keyLocation(given[1].rawValue), path: fields.path(given[1].rawValue))
            }
            return nil
        }
        guard let predicate = predicate(given[0], fields[given[0].rawValue]!, path: fields.path(given[0].rawValue)),
            let column
        else {
            return nil
        }
        return .column(column, predicate)
    }

    /// A `where` entry: `{ in: [a, b] }` (any predicate), `[a, b]` (in), or a single value (equals; null means is null).
    mutating func wherePredicate(_ node: DocumentNode, path: String) -> Exemption.Predicate? {
        switch node.kind {
        case .mapping:
            guard
                let fields = fields(
                    node, path: path, what: "where condition", allowed: Self.predicateKeys,
                    example: "{ in: [open, paid] }")
            else { return nil }
            let given = PredicateKind.allCases.filter { fields.has($0.rawValue) }
            guard given.count == 1 else {
                error("where condition: give exactly one of is, equals, in, not_in", at: node, path: path)
                return nil
            }
            return predicate(given[0], fields[given[0].rawValue]!, path: fields.path(given[0].rawValue))
        case .sequence:
            return predicate(.in, node, path: path)
        case .scalar(let text, let plain):
            if Scalar(resolving: text, plain: plain) == .null { return .is(.null) }
            return predicate(.equals, node, path: path)
        }
    }

    mutating func predicate(_ kind: PredicateKind, _ node: DocumentNode, path: String) -> Exemption.Predicate? {
        let key = kind.rawValue
        switch kind {
        case .is:
            if case .scalar(let text, true) = node.kind {
                switch Scalar(resolving: text, plain: true) {
                case .boolean(true): return .is(.true)
                case .boolean(false): return .is(.false)
                case .null: return .is(.null)
                default: break
                }
            }
            error("is: expected true, false or null, got \(node.kindDescription)", at: node, path: path)
            return nil
        case .equals:
            guard let value = scalar(node, path: path, what: "equals") else { return nil }
            // As documented (and as the short form `column: null` reads): `equals: null` means `is: null`.
            return value == .null ? .is(.null) : .equals(value)
        case .in, .notIn:
            guard case .sequence(let items) = node.kind else {
                error("\(key): expected a list like [open, paid], got \(node.kindDescription)", at: node, path: path)
                return nil
            }
            guard !items.isEmpty else {
                error("\(key): the list is empty; give at least one value", at: node, path: path)
                return nil
            }
            var values: [Scalar] = []
            var ok = true
            for (index, item) in items.enumerated() {
                if let value = scalar(item, path: Self.item(path, index), what: key) {
                    // `in: [a, null]` also matches a null column (documented); a null in `not_in` would exclude
                    // nothing, since not_in never exempts a null column.
                    if value == .null, kind == .notIn {
                        error(
                            "\(key): null in the list has no effect (not_in never exempts a null column); remove it, or add a separate is: null exemption",
                            at: item, path: Self.item(path, index))
                        ok = false
                    }
                    values.append(value)
                } else {
                    ok = false
                }
            }
            guard ok else { return nil }
            return kind == .in ? .in(values) : .notIn(values)
        }
    }

    mutating func through(_ node: DocumentNode, path: String) -> [QualifiedName]? {
        if case .scalar = node.kind {
            guard let table = table(node, path: path, what: "through") else { return nil }
            return [table]
        }
        guard let items = list(node, path: path, what: "through") else { return nil }
        var tables: [QualifiedName] = []
        var ok = true
        for (index, item) in items.enumerated() {
            if let table = table(item, path: Self.item(path, index), what: "through") {
                tables.append(table)
            } else {
                ok = false
            }
        }
        return ok ? tables : nil
    }

    // MARK: - Data points

    mutating func dataPoint(_ node: DocumentNode, path: String) -> DataPoint? {
        let example = "{ table: shop.order, anonymize: { email: fake_email } } or { table: shop.cart, delete: true }"
        guard
            let fields = fields(
                node, path: path, what: "data point", allowed: ["table", "through", "via", "delete", "anonymize"],
                example: example)
        else { return nil }
        var ok = true
        var table: QualifiedName?
        if let node = fields["table"] {
            table = self.table(node, path: fields.path("table"), what: "table")
        } else {
            missing("table", in: fields, what: "data point", example: example)
        }
        var through: [QualifiedName] = []
        if let node = fields["through"] {
            if let tables = self.through(node, path: fields.path("through")) { through = tables } else { ok = false }
        }
        var via: ColumnName?
        if let node = fields["via"] {
            via = column(node, path: fields.path("via"), what: "via")
            ok = ok && via != nil
        }
        var action: Action?
        switch (fields["delete"], fields["anonymize"]) {
        case (.some, .some):
            error(
                "data point: delete and anonymize given together; a data point does one of them (deleted rows need no anonymizing)",
                at: fields.keyLocation("anonymize"), path: fields.path("anonymize"))
            _ = anonymize(fields["anonymize"]!, path: fields.path("anonymize"))
        case (let deleteNode?, nil):
            let deletePath = fields.path("delete")
            if case .scalar(let text, true) = deleteNode.kind, Scalar(resolving: text, plain: true) == .boolean(true) {
                action = .delete
            } else if case .scalar(let text, true) = deleteNode.kind,
                Scalar(resolving: text, plain: true) == .boolean(false)
            {
                error(
                    "delete: false does nothing; remove the data point, or give anonymize: { column: strategy } instead",
                    at: deleteNode, path: deletePath)
            } else {
                error("delete: expected true, got \(deleteNode.kindDescription)", at: deleteNode, path: deletePath)
            }
        case (nil, let anonymizeNode?):
            action = anonymize(anonymizeNode, path: fields.path("anonymize"))
        case (nil, nil):
            error(
                "data point: say what to do with the rows: delete: true, or anonymize: { email: fake_email, ... }",
                at: fields.location, path: path)
        }
        guard ok, let table, let action else { return nil }
        return DataPoint(table: table, through: through, via: via, action: action)
    }

    mutating func anonymize(_ node: DocumentNode, path: String) -> Action? {
        guard case .mapping(let pairs) = node.kind else {
            error(
                "anonymize: expected a mapping of columns to strategies like { email: fake_email, phone: null }, got \(node.kindDescription)",
                at: node, path: path)
            return nil
        }
        guard !pairs.isEmpty else {
            error(
                "anonymize: no columns; name at least one, e.g. anonymize: { email: fake_email }, or use delete: true",
                at: node, path: path)
            return nil
        }
        var columns: [ColumnAnonymization] = []
        var seen: [ColumnName: String] = [:]
        var ok = true
        for (key, value) in pairs {
            guard case .scalar(let name, _) = key.kind else {
                error("anonymize: keys are column names, not \(key.kindDescription)", at: key, path: path)
                ok = false
                continue
            }
            let columnPath = Self.child(path, name)
            if let location = value.location {
                entries[columnPath] = PolicySourceMap.Entry(key: key.location, value: location)
            }
            let column = self.column(key, path: columnPath, what: "anonymize")
            let strategy = self.strategy(value, path: columnPath)
            guard let column, let strategy else {
                ok = false
                continue
            }
            if let earlier = seen[column] {
                error(
                    "anonymize: \(name.quotedForMessage) and \(earlier.quotedForMessage) name the same column \(column); give it once",
                    at: key, path: columnPath)
                ok = false
                continue
            }
            seen[column] = name
            columns.append(ColumnAnonymization(column: column, strategy: strategy))
        }
        guard ok else { return nil }
        return .anonymize(columns.sorted { $0.column < $1.column })
    }

    static let strategyNames = ["null", "redact", "hash", "fake_email", "truncate", "set"]

    mutating func strategy(_ node: DocumentNode, path: String) -> Strategy? {
        let usage =
            "use null, redact, redact(\"text\"), hash, fake_email, truncate(year|month|day) or { set: value }"
        switch node.kind {
        case .sequence:
            error("anonymize: expected a strategy, got a list; \(usage)", at: node, path: path)
            return nil
        case .mapping(let pairs):
            guard pairs.count == 1, case .scalar(let name, _) = pairs[0].key.kind else {
                error(
                    "anonymize: a strategy mapping has one key, like { redact: \"[removed]\" } or { set: 0 }",
                    at: node, path: path)
                return nil
            }
            let value = pairs[0].value
            switch name {
            case "redact":
                guard let text = text(value, path: path, what: "redact") else { return nil }
                return .redact(text)
            case "set":
                guard let scalar = scalar(value, path: path, what: "set") else { return nil }
                return .set(scalar)
            case "truncate":
                guard let unit = text(value, path: path, what: "truncate") else { return nil }
                return truncation(unit, at: value, path: path)
            default:
                error(
                    "\(name): not a strategy with a value\(Suggestions.didYouMean(name, among: ["redact", "set", "truncate"])); \(usage)",
                    at: pairs[0].key, path: path)
                return nil
            }
        case .scalar(let text, let plain):
            if plain, Scalar(resolving: text, plain: true) == .null { return .null }
            let trimmed = text.trimmingWhitespace
            switch trimmed {
            case "null": return .null
            case "redact": return .redact(nil)
            case "hash": return .hash
            case "fake_email": return .fakeEmail
            case "truncate":
                error(
                    "truncate: needs a unit; write truncate(year), truncate(month) or truncate(day)", at: node,
                    path: path)
                return nil
            case "set":
                error("set: needs a value; write { set: 0 } or set(0)", at: node, path: path)
                return nil
            default: break
            }
            if trimmed.hasSuffix(")"), let open = trimmed.firstIndex(of: "(") {
                let name = String(trimmed[..<open]).trimmingWhitespace
                let argument = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
                    .trimmingWhitespace
                switch name {
                case "truncate":
                    return truncation(argument, at: node, path: path)
                case "redact":
                    return .redact(Self.unquote(argument) ?? argument)
                case "set":
                    if let text = Self.unquote(argument) { return .set(.string(text)) }
                    return .set(Scalar(resolving: argument, plain: true))
                default:
                    error(
                        "\(name.quotedForMessage): not a strategy\(Suggestions.didYouMean(name, among: Self.strategyNames)); \(usage)",
                        at: node, path: path)
                    return nil
                }
            }
            error(
                "\(trimmed.quotedForMessage): not a strategy\(Suggestions.didYouMean(trimmed, among: Self.strategyNames)); \(usage)",
                at: node, path: path)
            return nil
        }
    }

    mutating func truncation(_ unit: String, at node: DocumentNode, path: String) -> Strategy? {
        if let value = Strategy.TruncationUnit(rawValue: unit.lowercased()) { return .truncate(value) }
        let names = Strategy.TruncationUnit.allCases.map(\.rawValue)
        error(
            "truncate: \(unit.quotedForMessage) is not a unit\(Suggestions.didYouMean(unit, among: names)); write truncate(year), truncate(month) or truncate(day)",
            at: node, path: path)
        return nil
    }

    /// The text inside matching single or double quotes (a doubled quote stands for itself), or nil.
    static func unquote(_ text: String) -> String? {
        guard text.count >= 2, let quote = text.first, quote == "\"" || quote == "'", text.last == quote else {
            return nil
        }
        let inner = text.dropFirst().dropLast()
        var result = ""
        var index = inner.startIndex
        while index < inner.endIndex {
            let character = inner[index]
            result.append(character)
            let next = inner.index(after: index)
            index =
                character == quote && next < inner.endIndex && inner[next] == quote ? inner.index(after: next) : next
        }
        return result
    }

    // MARK: - Limits

    static let maximumBatchSize = 100_000
    static let maximumSubjectsPerRun = 100_000_000

    mutating func limits(_ node: DocumentNode, path: String) -> Limits? {
        guard
            let fields = fields(
                node, path: path, what: "limits",
                allowed: ["batch_size", "max_subjects_per_run", "max_fraction", "pause", "parallel"],
                example:
                    "{ batch_size: 1000, max_subjects_per_run: 50000, max_fraction: 0.2, pause: 900%, parallel: 1 }")
        else { return nil }
        var limits = Limits()
        var ok = true
        func integer(_ name: String, maximum: Int, into field: WritableKeyPath<Limits, Int>) {
            guard let node = fields[name] else { return }
            if let value = positiveInteger(node, path: fields.path(name), what: name, maximum: maximum) {
                limits[keyPath: field] = value
            } else {
                ok = false
            }
        }
        integer("batch_size", maximum: Self.maximumBatchSize, into: \.batchSize)
        integer("max_subjects_per_run", maximum: Self.maximumSubjectsPerRun, into: \.maxSubjectsPerRun)
        integer("parallel", maximum: Limits.maximumParallel, into: \.parallel)
        if let node = fields["max_fraction"] {
            if let value = fraction(node) {
                limits.maxFraction = value
            } else {
                error(
                    "max_fraction: expected a fraction of the subject table greater than 0 and at most 1 (like 0.2 or 20%), got \(node.kindDescription)",
                    at: node, path: fields.path("max_fraction"))
                ok = false
            }
        }
        if let node = fields["pause"] {
            if case .scalar(let text, true) = node.kind, Scalar(resolving: text, plain: true) == .integer(0) {
                limits.pause = .fixed(.zero)
            } else if let text = text(node, path: fields.path("pause"), what: "pause") {
                do {
                    limits.pause = try PauseDuration.parsePause(text)
                } catch {
                    self.error("pause: \(error.message)", at: node, path: fields.path("pause"))
                    ok = false
                }
            } else {
                ok = false
            }
        }
        return ok ? limits : nil
    }

    private func fraction(_ node: DocumentNode) -> Double? {
        guard case .scalar(let text, let plain) = node.kind else { return nil }
        var value: Double?
        if plain {
            switch Scalar(resolving: text, plain: true) {
            case .integer(let integer): value = Double(integer)
            case .decimal(let decimal): value = Double(decimal)
            case .string(let string) where string.hasSuffix("%"):
                value = Double(string.dropLast().trimmingWhitespace).map { $0 / 100 }
            default: value = nil
            }
        } else if text.hasSuffix("%") {
            value = Double(text.dropLast().trimmingWhitespace).map { $0 / 100 }
        }
        guard let value, value.isFinite, value > 0, value <= 1 else { return nil }
        return value
    }
}

extension Scalar {
    /// Resolves a scalar by the YAML 1.2 core schema: quoted text is a string; plain `null`/`~`/empty is null,
    /// `true`/`false` are booleans, integers and decimals are numbers, anything else (`yes`, `NO`) is text.
    init(resolving text: String, plain: Bool) {
        guard plain else {
            self = .string(text)
            return
        }
        switch text {
        case "", "~", "null", "Null", "NULL": self = .null
        case "true", "True", "TRUE": self = .boolean(true)
        case "false", "False", "FALSE": self = .boolean(false)
        default:
            if let decimal = Self.normalizedNumber(text) {
                if !decimal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let integer = Int64(decimal) {
                    self = .integer(integer)
                } else {
                    self = .decimal(decimal)
                }
            } else {
                self = .string(text)
            }
        }
    }

    /// The text of a YAML core-schema number as a JSON number (`.5` → `0.5`, `+3` → `3`), or nil if it is not one.
    static func normalizedNumber(_ text: String) -> String? {
        var scalars = Substring(text)
        var sign = ""
        if let first = scalars.first, first == "-" || first == "+" {
            sign = first == "-" ? "-" : ""
            scalars = scalars.dropFirst()
        }
        let integerPart = scalars.prefix(while: { $0.isASCII && $0.isNumber })
        scalars = scalars.dropFirst(integerPart.count)
        var fractionPart: Substring = ""
        var hasPoint = false
        if scalars.first == "." {
            hasPoint = true
            scalars = scalars.dropFirst()
            fractionPart = scalars.prefix(while: { $0.isASCII && $0.isNumber })
            scalars = scalars.dropFirst(fractionPart.count)
        }
        guard !integerPart.isEmpty || !fractionPart.isEmpty else { return nil }
        var exponent = ""
        if let e = scalars.first, e == "e" || e == "E" {
            scalars = scalars.dropFirst()
            var exponentSign = ""
            if let s = scalars.first, s == "-" || s == "+" {
                exponentSign = s == "-" ? "-" : ""
                scalars = scalars.dropFirst()
            }
            let digits = scalars.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty else { return nil }
            scalars = scalars.dropFirst(digits.count)
            exponent = "e" + exponentSign + digits
        }
        guard scalars.isEmpty else { return nil }
        var integer = String(integerPart.drop(while: { $0 == "0" }))
        if integer.isEmpty { integer = "0" }
        var result = sign + integer
        if hasPoint, !fractionPart.isEmpty { result += "." + fractionPart }
        if result == "-0" { result = "0" }
        return result + exponent
    }
}
