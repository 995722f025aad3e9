/// `expires:`: the rule, its period and the companion key that says where its date is read.
extension PolicyDecoder {
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

    /// The scalar that makes a policy act on erasure requests instead of on a date.
    static let onRequest = "on_request"

    mutating func rule(_ node: DocumentNode, path: String) -> Rule? {
        if case .scalar(let text, _) = node.kind { return onRequestRule(text, node, path: path) }
        if case .mapping(let pairs) = node.kind {
            for (key, _) in pairs {
                guard case .scalar(let name, _) = key.kind, Self.isOnRequestSpelling(name) else { continue }
                error(
                    "expires: \(name) is written as a scalar, not as a key: write expires: on_request (the policy acts on pending erasure requests)",
                    at: key, path: Self.child(path, name))
                return nil
            }
        }
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

    /// `expires: on_request`, or a clear error for a near miss (`on-request`, `onRequest`, `On_Request`) or another
    /// scalar.
    private mutating func onRequestRule(_ text: String, _ node: DocumentNode, path: String) -> Rule? {
        if text == Self.onRequest { return .onRequest }
        if Self.isOnRequestSpelling(text) {
            error(
                "expires: \(text.quotedForMessage) is not a rule; write expires: on_request (lower case, with an underscore)",
                at: node, path: path)
        } else {
            error(
                "expires: \(text.quotedForMessage) is not a rule; give a mapping like { inactive_for: 1 year, activity: last_seen_at }, or expires: on_request to act on erasure requests",
                at: node, path: path)
        }
        return nil
    }

    /// Whether `text` is `on_request` in another case or with another separator (`on-request`, `OnRequest`).
    static func isOnRequestSpelling(_ text: String) -> Bool {
        let letters = text.lowercased().filter { $0.isLetter }
        return letters == "onrequest" || letters == "request" || letters == "onrequested"
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
}
