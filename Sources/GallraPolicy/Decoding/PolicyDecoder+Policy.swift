/// The top level of a policy document and its subject.
extension PolicyDecoder {
    static let policyKeys = [
        "policy", "description", "purpose", "legal_basis", "collect", "state", "subject", "expires", "except",
        "schedule", "data",
        "limits",
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

        var purpose: String?
        if let node = fields["purpose"] {
            purpose = self.purpose(node, path: "purpose")
            complete = complete && purpose != nil
        }

        var legalBasis: LegalBasis?
        if let node = fields["legal_basis"] {
            legalBasis = self.legalBasis(node, path: "legal_basis")
            complete = complete && legalBasis != nil
        }

        var collection = Policy.Collection.always
        if let node = fields["collect"] {
            if let value = self.collection(node, path: "collect") { collection = value } else { complete = false }
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
            name: name, description: description, purpose: purpose, legalBasis: legalBasis, collection: collection,
            state: state, subject: subject, rule: rule,
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
}
