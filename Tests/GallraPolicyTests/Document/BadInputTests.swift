import Foundation
import GallraPolicy
import Testing

/// A small valid policy; bad inputs are made by changing one line of it.
let minimal = """
    policy: minimal
    subject: { table: shop.customer, key: id }
    expires:
      inactive_for: 1 year
      activity: last_seen_at
    data:
      - { table: shop.customer, delete: true }
    """

/// The errors of a document, as (line, column, message).
func errors(_ text: String, path: String = "p.yaml") -> [(line: Int, column: Int, message: String)] {
    PolicyFile(parsing: text, path: path).diagnostics.filter { $0.severity == .error }.map {
        ($0.location?.line ?? 0, $0.location?.column ?? 0, $0.message)
    }
}

struct BadInput: Sendable, CustomTestStringConvertible {
    var name: String
    var yaml: String
    var line: Int
    var column: Int
    var message: String
    var testDescription: String { name }

    init(_ name: String, _ yaml: String, _ line: Int, _ column: Int, _ message: String) {
        self.name = name
        self.yaml = yaml
        self.line = line
        self.column = column
        self.message = message
    }

    /// The minimal policy with one text replaced.
    init(_ name: String, replacing old: String, with new: String, _ line: Int, _ column: Int, _ message: String) {
        precondition(minimal.contains(old))
        self.init(name, minimal.replacingOccurrences(of: old, with: new), line, column, message)
    }
}

@Suite("Bad inputs")
struct BadInputTests {
    static let cases: [BadInput] = [
        BadInput(
            "a typo'd key", replacing: "inactive_for", with: "inactiv_for", 4, 3,
            "inactiv_for: unknown key in expires; did you mean inactive_for?"),
        BadInput(
            "a typo'd top-level key", replacing: "data:", with: "dat:", 6, 1,
            "dat: unknown key in policy document; did you mean data?"),
        BadInput(
            "\"1 yaer\"", replacing: "1 year", with: "1 yaer", 4, 17,
            "inactive_for: not a period: \"1 yaer\" (unknown unit \"yaer\"; did you mean \"year\"?)"),
        BadInput(
            "\"-3 days\"", replacing: "1 year", with: "-3 days", 4, 17,
            "inactive_for: not a period: \"-3 days\" (a period must be positive; write for example \"3 days\")"),
        BadInput(
            "\"0 days\"", replacing: "1 year", with: "0 days", 4, 17,
            "inactive_for: not a period: \"0 days\" (a period must be longer than zero; write for example \"30 days\")"),
        BadInput(
            "a missing subject key", replacing: "subject: { table: shop.customer, key: id }",
            with: "subject: { table: shop.customer }", 2, 10,
            "subject: missing key key; for example subject: { table: shop.customer, key: id } (the column identifying one subject)"
        ),
        BadInput(
            "a missing subject table", replacing: "subject: { table: shop.customer, key: id }",
            with: "subject: { key: id }", 2, 10,
            "subject: missing key table; for example subject: { table: shop.customer, key: id }"),
        BadInput(
            "a missing subject", replacing: "subject: { table: shop.customer, key: id }\n", with: "", 1, 1,
            "policy document: missing key subject; for example subject: { table: shop.customer, key: id }"),
        BadInput(
            "a missing rule", replacing: "expires:\n  inactive_for: 1 year\n  activity: last_seen_at\n", with: "", 1, 1,
            "policy document: missing key expires; for example expires: { inactive_for: 1 year, activity: last_seen_at }"
        ),
        BadInput(
            "missing data", replacing: "data:\n  - { table: shop.customer, delete: true }", with: "", 1, 1,
            "policy document: missing key data; for example data: [ { table: shop.customer, delete: true } ]"),
        BadInput(
            "an injection attempt as a table name", replacing: "{ table: shop.customer, delete",
            with: "{ table: \"shop.customer; DROP TABLE shop.order\", delete", 7, 14,
            "table: not a table name: \"shop.customer; DROP TABLE shop.order\" (unexpected \";\" at character 14; quote names that contain it)"
        ),
        BadInput(
            "a cycle in through", replacing: "- { table: shop.customer, delete: true }",
            with: "- { table: shop.order_line, through: [shop.order, shop.order], delete: true }", 7, 53,
            "through: shop.order appears twice; a path visits each table once (a cycle is not a path)"),
        BadInput(
            "the subject table in through", replacing: "- { table: shop.customer, delete: true }",
            with: "- { table: shop.order, through: [shop.customer], delete: true }", 7, 36,
            "through: shop.customer is the subject table; the path starts there, so leave it out of through"),
        BadInput(
            "a data point's own table in through", replacing: "- { table: shop.customer, delete: true }",
            with: "- { table: shop.order, through: shop.order, delete: true }", 7, 35,
            "through: shop.order is the data point's own table; through lists only the tables between the subject and it"
        ),
        BadInput(
            "delete: false with anonymize", replacing: "delete: true }",
            with: "delete: false, anonymize: { a: hash } }",
            7, 37,
            "delete: false does nothing; remove it to anonymize the rows, or write delete: true to delete them where nothing references them any more and anonymize the others"
        ),
        BadInput(
            "anonymize with no columns", replacing: "delete: true }", with: "anonymize: {} }", 7, 40,
            "anonymize: no columns; name at least one, e.g. anonymize: { email: fake_email }, or use delete: true"),
        BadInput(
            "the same column twice", replacing: "delete: true }", with: "anonymize: { email: hash, Email: null } }",
            7, 55, "anonymize: \"Email\" and \"email\" name the same column email; give it once"),
        BadInput(
            "the subject key anonymized", replacing: "delete: true }", with: "anonymize: { id: hash } }", 7, 46,
            "anonymize: id is the subject key of shop.customer; changing it loses track of the subject. Delete the subject row, or anonymize other columns"
        ),
        BadInput(
            "a bad truncate unit", replacing: "delete: true }", with: "anonymize: { born: truncate(yaer) } }", 7, 48,
            "truncate: \"yaer\" is not a unit; did you mean year?; write truncate(year), truncate(month) or truncate(day)"
        ),
        BadInput(
            "an unknown strategy", replacing: "delete: true }", with: "anonymize: { email: fake_mail } }", 7, 49,
            "\"fake_mail\": not a strategy; did you mean fake_email?; use null, redact, redact(\"text\"), hash, fake_email, truncate(year|month|day) or { set: value }"
        ),
        BadInput(
            "max_fraction above 1", "\(minimal)\nlimits: { max_fraction: 1.5 }", 8, 25,
            "max_fraction: expected a fraction of the subject table greater than 0 and at most 1 (like 0.2 or 20%), got \"1.5\""
        ),
        BadInput(
            "max_fraction of zero", "\(minimal)\nlimits: { max_fraction: 0 }", 8, 25,
            "max_fraction: expected a fraction of the subject table greater than 0 and at most 1 (like 0.2 or 20%), got \"0\""
        ),
        BadInput(
            "no batch in flight", "\(minimal)\nlimits: { parallel: 0 }", 8, 21,
            "parallel: expected a positive integer up to 16, got \"0\""),
        BadInput(
            "more batches in flight than allowed", "\(minimal)\nlimits:\n  parallel: 64", 9, 13,
            "parallel: expected a positive integer up to 16, got \"64\""),
        BadInput(
            "a batch size that is not a number", "\(minimal)\nlimits:\n  batch_size: many", 9, 15,
            "batch_size: expected a positive integer up to 100000, got \"many\""),
        BadInput(
            "a bad policy name", replacing: "policy: minimal", with: "policy: Minimal Policy", 1, 9,
            "policy: policy name \"Minimal Policy\" may hold only a-z, 0-9, - and _, and must start with a letter or digit"
        ),
        BadInput(
            "a bad state", replacing: "policy: minimal", with: "policy: minimal\nstate: actve", 2, 8,
            "state: \"actve\" is not a state; did you mean active?; use draft, active or disabled"),
        BadInput(
            "two rules", replacing: "  activity: last_seen_at", with: "  activity: last_seen_at\n  older_than: 2 years",
            6, 3,
            "expires: inactive_for and older_than given together; a policy has one rule, so split it into one policy per rule"
        ),
        BadInput(
            "a rule without its column", replacing: "  activity: last_seen_at", with: "  created: created_at", 5, 3,
            "created: belongs with older_than, not inactive_for; for inactive_for write activity: last_seen_at"),
        BadInput(
            "delete: false", replacing: "delete: true", with: "delete: false", 7, 37,
            "delete: false does nothing; remove the data point, or give anonymize: { column: strategy } instead"),
        BadInput(
            "an exemption without a condition", "\(minimal)\nexcept:\n  - { column: legal_hold }", 9, 5,
            "exemption: missing the condition on \"legal_hold\"; add one of is, equals, in, not_in, e.g. is: true"),
        BadInput(
            "is with a string", "\(minimal)\nexcept:\n  - { column: legal_hold, is: yes }", 9, 31,
            "is: expected true, false or null, got \"yes\""),
        BadInput(
            "a duplicate key (from the YAML parser)", replacing: "policy: minimal",
            with: "policy: minimal\npolicy: again",
            1, 1, "key policy appears twice in the same mapping; keep one"),
        BadInput(
            "a tab used for indentation (from the YAML parser)", replacing: "  inactive_for", with: "\tinactive_for", 4,
            1,
            "YAML syntax: found character that cannot start any token (while scanning for the next token at line 4, column 1); YAML indents with spaces only, replace the tab with spaces"
        ),
        BadInput(
            "bad indentation (from the YAML parser)", replacing: "  activity: last_seen_at",
            with: "   activity: last_seen_at",
            5, 12,
            "YAML syntax: mapping values are not allowed in this context; check the indentation, or quote a value that contains \": \""
        ),
        BadInput(
            "a document that is a list", "- policy: x", 1, 1,
            "policy document: expected a mapping like policy: inactive-customers, got a list"),
        BadInput(
            "a YAML tag", replacing: "policy: minimal", with: "policy: !secret minimal", 1, 9,
            "YAML tags like \"!secret\" are not used in policy files; remove the tag"),
    ]

    @Test("each bad input gives a clear error at the right line and column", arguments: cases)
    func badInput(_ input: BadInput) {
        let found = errors(input.yaml)
        #expect(found.count == 1, "\(found)")
        let first = found.first
        #expect(first?.message == input.message)
        #expect(first?.line == input.line)
        #expect(first?.column == input.column)
    }

    @Test("the standard YAML tags are accepted: !!str and ! make text, the others change nothing")
    func standardTags() throws {
        let tagged = minimal.replacingOccurrences(
            of: "policy: minimal", with: "policy: !!str minimal\ndescription: !!str 2026")
        #expect(errors(tagged).isEmpty)
        #expect(try Policy(parsing: tagged).description == "2026")
        #expect(errors(minimal.replacingOccurrences(of: "policy: minimal", with: "policy: ! minimal")).isEmpty)
        // is: takes a boolean: true is one, !!str true is text, as "true" is.
        #expect(errors("\(minimal)\nexcept:\n  - { column: legal_hold, is: true }").isEmpty)
        #expect(
            errors("\(minimal)\nexcept:\n  - { column: legal_hold, is: !!str true }").map(\.message)
                == errors("\(minimal)\nexcept:\n  - { column: legal_hold, is: \"true\" }").map(\.message))
        #expect(errors("\(minimal)\nexcept:\n  - { column: legal_hold, is: !!str true }").count == 1)
        let application = minimal.replacingOccurrences(
            of: "policy: minimal", with: "policy: !<tag:example.com,2026:name> minimal")
        #expect(
            errors(application).map(\.message) == [
                "YAML tags like \"tag:example.com,2026:name\" are not used in policy files; remove the tag"
            ])
    }

    @Test("\"x\"\"y\" is a valid name: it names x\"y")
    func doubledQuote() throws {
        let policy = try Policy(
            parsing: minimal.replacingOccurrences(of: "shop.customer, key", with: "'shop.\"x\"\"y\"', key"))
        #expect(policy.subject.table == QualifiedName(schema: "shop", name: "x\"y"))
        #expect(policy.subject.table.description == "shop.\"x\"\"y\"")
    }

    @Test("all errors of a file are reported, not only the first")
    func collectsAll() {
        let found = errors(
            """
            policy: Bad Name
            subject: { table: "a;b c", kye: id }
            expires: { inactive_for: 1 yaer, activity: seen }
            data:
              - { table: t, delete: false }
              - { table: u, anonymize: { x: truncate(hour) } }
            limits: { batch_size: -1, pause: 2 hrs }
            """)
        #expect(found.map(\.line) == [1, 2, 2, 3, 5, 6, 7, 7])
        #expect(found.contains { $0.message == "kye: unknown key in subject; did you mean key?" })
    }

    @Test("a proportional pause out of range is refused with the range")
    func proportionalPauseOutOfRange() {
        let found = errors(minimal + "\nlimits: { pause: 2000% }")
        #expect(found.map(\.line).count == 1)
        #expect(
            found.first?.message.contains(
                "a proportional pause is a whole percentage of each batch's time, from 0% to 1000%") == true)
        #expect(
            PolicyFile(parsing: minimal + "\nlimits: { pause: 300% }").policies.first?.policy.limits.pause
                == .proportional(percent: 300))
    }

    @Test("two policies with the same name in one apply")
    func duplicateNames() throws {
        let a = PolicyFile(parsing: minimal, path: "a.yaml")
        let b = PolicyFile(parsing: "# the same name again\n" + minimal, path: "b.yaml")
        let diagnostics = Policy.duplicateNameDiagnostics(a.policies + b.policies)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.location == SourceLocation(file: "b.yaml", line: 2, column: 9))
        #expect(
            diagnostics.first?.message
                == "policy \"minimal\" is defined twice (first at a.yaml:1:9); policy names must be unique, rename one")
        #expect(diagnostics.first?.description.hasPrefix("b.yaml:2:9: error: policy \"minimal\"") == true)
    }

    @Test("a batch larger than a run is a warning, not an error")
    func warning() {
        let file = PolicyFile(parsing: minimal + "\nlimits: { batch_size: 500, max_subjects_per_run: 100 }")
        #expect(!file.hasErrors)
        #expect(file.policies.count == 1)
        #expect(file.diagnostics.map(\.severity) == [.warning])
        #expect(file.diagnostics.first?.location?.line == 8)
    }
}

@Suite("Bad inputs in JSON and structure")
struct MoreBadInputTests {
    @Test("JSON documents report positions like YAML")
    func jsonPositions() {
        let json = """
            {
              "policy": "j",
              "subject": {"table": "shop.customer", "key": "id"},
              "expires": {"inactive_for": "1 yaer", "activity": "seen"},
              "data": [{"table": "shop.customer", "delete": true}]
            }
            """
        let found = errors(json, path: "p.json")
        #expect(found.count == 1)
        #expect(found.first?.line == 4)
        #expect(found.first?.column == 31)
        #expect(found.first?.message.contains("did you mean \"year\"?") == true)
    }

    @Test("a data point listed twice")
    func dataPointTwice() {
        let found = errors(minimal + "\n  - { table: shop.customer, delete: true }")
        #expect(
            found.map(\.message) == [
                "data: shop.customer is listed twice with the same path (also data[0]); merge them into one data point"
            ])
        #expect(found.first?.line == 8)
    }

    @Test("a where condition on the same column twice")
    func whereTwice() {
        let found = errors(minimal + "\nexcept:\n  - { exists: shop.order, where: { status: open, Status: paid } }")
        #expect(found.map(\.message) == ["where: column status is given twice; combine the conditions into one"])
    }
}

@Suite("Schedules in policy files")
struct PolicyScheduleTests {
    @Test func aValidScheduleGivesNoDiagnostic() {
        let file = PolicyFile(parsing: minimal + "\nschedule: daily at 03:00 Europe/Stockholm\n", path: "p.yaml")
        #expect(file.diagnostics.isEmpty)
        #expect(file.policies.count == 1)
    }

    @Test func aBadScheduleIsAnErrorAtItsPlace() throws {
        let found = errors(minimal + "\nschedule: daily at 24:00\n")
        let error = try #require(found.first)
        #expect(found.count == 1)
        #expect(error.line == 8)
        #expect(error.column == 20, "points at 24")
        #expect(error.message.contains("hour 24"))
        #expect(error.message.contains("for example: schedule: daily at 00:00"))
    }
}
