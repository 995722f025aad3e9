import Foundation
import GallraPolicy
import Testing

/// A whole policy using every part of the language, comments included, as the documentation shows one.
let designExample = """
    policy: inactive-customers
    description: Accounts with no activity for one year (GDPR Art. 5(1)(e)).
    state: active                 # draft: dry runs only | active | disabled
    subject: { table: shop.customer, key: id }
    expires:
      inactive_for: 1 year        # also: "18 months", "90 days", "P1Y"
      activity: last_seen_at      # or the latest row of a related table:
                                  #   { table: shop.order, column: placed_at }
    except:
      - { column: legal_hold, is: true }
    schedule: daily at 03:00      # or "every 6h", or a 5-field cron expression; UTC unless a zone is given
    data:
      - { table: shop.wishlist_item, delete: true }            # link found from the foreign key to shop.customer
      - { table: shop.order_line, through: shop.order, delete: true }   # two hops
      - table: shop.order
        anonymize: { email: fake_email, full_name: redact, phone: null, birth_date: truncate(year) }
      - { table: shop.address, anonymize: { street: redact, phone: null } }  # the subject row points to it
      - { table: shop.newsletter_log, via: customer_ref, delete: true }  # no foreign key declared: name the column
      - { table: shop.customer, delete: true }                 # the subject row itself
    limits: { batch_size: 1000, max_subjects_per_run: 50000, max_fraction: 0.2 }

    """

func table(_ schema: String, _ name: String) -> QualifiedName { QualifiedName(schema: schema, name: name) }
func column(_ name: String) -> ColumnName { ColumnName(name) }

/// The example's model, written out by hand.
let designExampleModel = Policy(
    name: try! PolicyName("inactive-customers"),
    description: "Accounts with no activity for one year (GDPR Art. 5(1)(e)).",
    state: .active,
    subject: Subject(table: table("shop", "customer"), key: column("id")),
    rule: .inactiveFor(RetentionPeriod(months: 12), activity: .column(column("last_seen_at"))),
    exemptions: [.column(column("legal_hold"), .is(.true))],
    schedule: "daily at 03:00",
    dataPoints: [
        DataPoint(table: table("shop", "wishlist_item"), action: .delete),
        DataPoint(table: table("shop", "order_line"), through: [table("shop", "order")], action: .delete),
        DataPoint(
            table: table("shop", "order"),
            action: .anonymize([
                ColumnAnonymization(column: column("birth_date"), strategy: .truncate(.year)),
                ColumnAnonymization(column: column("email"), strategy: .fakeEmail),
                ColumnAnonymization(column: column("full_name"), strategy: .redact(nil)),
                ColumnAnonymization(column: column("phone"), strategy: .null),
            ])),
        DataPoint(
            table: table("shop", "address"),
            action: .anonymize([
                ColumnAnonymization(column: column("phone"), strategy: .null),
                ColumnAnonymization(column: column("street"), strategy: .redact(nil)),
            ])),
        DataPoint(table: table("shop", "newsletter_log"), via: column("customer_ref"), action: .delete),
        DataPoint(table: table("shop", "customer"), action: .delete),
    ],
    limits: Limits(batchSize: 1000, maxSubjectsPerRun: 50000, maxFraction: 0.2, pause: .proportional(percent: 900))
)

@Suite("Policy documents")
struct PolicyDocumentTests {
    @Test("the documentation's example policy parses into the expected policy")
    func designExampleParses() throws {
        let file = PolicyFile(parsing: designExample, path: "inactive.yaml")
        #expect(file.diagnostics == [])
        #expect(file.policies.map(\.policy) == [designExampleModel])
    }

    @Test("every entry keeps the line and column where it was written")
    func positions() throws {
        let file = PolicyFile(parsing: designExample, path: "inactive.yaml")
        let source = try #require(file.policies.first).source
        #expect(source.location(of: "policy") == SourceLocation(file: "inactive.yaml", line: 1, column: 9))
        #expect(source.keyLocation(of: "subject.key") == SourceLocation(file: "inactive.yaml", line: 4, column: 34))
        #expect(source.location(of: "expires.inactive_for")?.line == 6)
        #expect(source.location(of: "expires.inactive_for")?.column == 17)
        #expect(source.scheduleLocation == SourceLocation(file: "inactive.yaml", line: 11, column: 11))
        #expect(source.location(of: "data[2].anonymize.birth_date")?.line == 16)
        #expect(source.location(of: "data[2]")?.line == 15)
        #expect(source.location(of: "data[4].via") == SourceLocation(file: "inactive.yaml", line: 18, column: 40))
        // Unknown paths fall back to the nearest written parent.
        #expect(source.location(of: "data[4].via.nothing")?.column == 40)
    }

    @Test("YAML → policy → canonical JSON → policy is the identity")
    func roundTrip() throws {
        let policy = try Policy(parsing: designExample)
        let json = policy.canonicalJSON
        let again = try Policy(parsing: json, file: "stored.json")
        #expect(again == policy)
        #expect(again.canonicalJSON == json)
    }

    @Test("canonical JSON does not depend on key order, layout or spelt-out defaults")
    func canonicalIsStable() throws {
        let reordered = """
            limits:
              max_fraction: 20%
              batch_size: 1000
            data:
              - delete: true
                table: shop.wishlist_item
              - { delete: true, through: [shop.order], table: shop.order_line }
              - anonymize: { birth_date: "truncate(year)", phone: ~, full_name: redact, email: fake_email }
                table: shop.order
              - { anonymize: { phone: null, street: redact }, table: shop.address }
              - { via: customer_ref, table: shop.newsletter_log, delete: true }
              - { table: Shop.Customer, delete: true }
            schedule: "daily at 03:00"
            except: [ { is: true, column: legal_hold } ]
            expires: { activity: last_seen_at, inactive_for: P1Y }
            subject: { key: id, table: shop.customer }
            state: active
            description: "Accounts with no activity for one year (GDPR Art. 5(1)(e))."
            policy: inactive-customers
            """
        let a = try Policy(parsing: designExample)
        let b = try Policy(parsing: reordered)
        #expect(a == b)
        #expect(Array(a.canonicalJSON.utf8) == Array(b.canonicalJSON.utf8))
    }

    @Test("the canonical JSON of the example")
    func canonicalText() throws {
        let policy = try Policy(parsing: designExample)
        #expect(
            policy.canonicalJSON
                == #"{"data":[{"delete":true,"table":"shop.wishlist_item"},{"delete":true,"table":"shop.order_line","through":["shop.order"]},{"anonymize":{"birth_date":"truncate(year)","email":"fake_email","full_name":"redact","phone":"null"},"table":"shop.order"},{"anonymize":{"phone":"null","street":"redact"},"table":"shop.address"},{"delete":true,"table":"shop.newsletter_log","via":"customer_ref"},{"delete":true,"table":"shop.customer"}],"description":"Accounts with no activity for one year (GDPR Art. 5(1)(e)).","except":[{"column":"legal_hold","is":true}],"expires":{"activity":"last_seen_at","inactive_for":"1 year"},"limits":{"batch_size":1000,"max_fraction":0.2,"max_subjects_per_run":50000,"pause":"900%"},"policy":"inactive-customers","schedule":"daily at 03:00","state":"active","subject":{"key":"id","table":"shop.customer"}}"#
        )
    }

    @Test("JSON as other tools write it (spaces, any key order) reads the same")
    func jsonFromTools() throws {
        let policy = try Policy(parsing: designExample)
        let data = try JSONEncoder().encode(policy)
        let decoded = try JSONDecoder().decode(Policy.self, from: data)
        #expect(decoded == policy)
        let spaced = String(decoding: data, as: UTF8.self)
            .replacingOccurrences(of: ",\"", with: ", \"").replacingOccurrences(of: "\":", with: "\": ")
        #expect(try Policy(parsing: spaced) == policy)
    }

    @Test("every kind of rule, exemption and strategy survives the round trip")
    func everyKind() throws {
        let yaml = """
            policy: all-kinds_2
            subject: { table: '"HR"."Employee"', key: '"EmpNo"' }
            expires:
              consent_revoked: 30 days
              consent: { table: crm.consent, revoked_at: withdrawn_at, via: person_id }
            except:
              - { column: status, in: [open, 1, 2.5, true] }
              - { column: kind, not_in: ["no", NO] }
              - { column: note, equals: "x\\"y" }
              - { column: ended, is: null }
              - { column: vip, is: false }
              - exists: shop.order
                through: shop.cart
                via: owner
                where: { status: { in: [open, paid] }, total: 0, closed_at: null, flag: [a, b] }
              - { exists: legal.hold }
            data:
              - table: hr.person
                pause: 1
            """
        let file = PolicyFile(parsing: yaml)
        #expect(file.diagnostics.map(\.message).contains { $0.contains("pause: unknown key in data point") })

        let good = yaml.replacingOccurrences(
            of: "    pause: 1",
            with: """
                    anonymize:
                      a: null
                      b: redact
                      c: { redact: "[removed]" }
                      d: redact('it''s gone')
                      e: hash
                      f: fake_email
                      g: truncate(month)
                      h: { truncate: day }
                      i: { set: 0 }
                      j: set("unknown")
                      k: { set: 12.50 }
                      l: set(true)
                      m: { set: "NO" }
                limits: { batch_size: 10, max_subjects_per_run: 100, max_fraction: 1, pause: 200ms, parallel: 4 }
                """)
        let policy = try Policy(parsing: good)
        #expect(policy.subject == Subject(table: QualifiedName(schema: "HR", name: "Employee"), key: column("EmpNo")))
        #expect(
            policy.rule
                == .consentRevoked(
                    grace: RetentionPeriod(days: 30),
                    consent: .table(
                        table("crm", "consent"), revokedAt: column("withdrawn_at"), via: column("person_id"))
                ))
        #expect(
            policy.exemptions == [
                .column(column("status"), .in([.string("open"), .integer(1), .decimal("2.5"), .boolean(true)])),
                .column(column("kind"), .notIn([.string("no"), .string("NO")])),
                .column(column("note"), .equals(.string("x\"y"))),
                .column(column("ended"), .is(.null)),
                .column(column("vip"), .is(.false)),
                .relatedExists(
                    table: table("shop", "order"), through: [table("shop", "cart")], via: column("owner"),
                    conditions: [
                        // Ordered by column name, whatever the written order.
                        .init(column: column("closed_at"), predicate: .is(.null)),
                        .init(column: column("flag"), predicate: .in([.string("a"), .string("b")])),
                        .init(column: column("status"), predicate: .in([.string("open"), .string("paid")])),
                        .init(column: column("total"), predicate: .equals(.integer(0))),
                    ]),
                .relatedExists(table: table("legal", "hold"), through: [], via: nil, conditions: []),
            ])
        #expect(
            policy.dataPoints[0].action
                == .anonymize([
                    .init(column: column("a"), strategy: .null),
                    .init(column: column("b"), strategy: .redact(nil)),
                    .init(column: column("c"), strategy: .redact("[removed]")),
                    .init(column: column("d"), strategy: .redact("it's gone")),
                    .init(column: column("e"), strategy: .hash),
                    .init(column: column("f"), strategy: .fakeEmail),
                    .init(column: column("g"), strategy: .truncate(.month)),
                    .init(column: column("h"), strategy: .truncate(.day)),
                    .init(column: column("i"), strategy: .set(.integer(0))),
                    .init(column: column("j"), strategy: .set(.string("unknown"))),
                    .init(column: column("k"), strategy: .set(.decimal("12.50"))),
                    .init(column: column("l"), strategy: .set(.boolean(true))),
                    .init(column: column("m"), strategy: .set(.string("NO"))),
                ]))
        #expect(
            policy.limits
                == Limits(
                    batchSize: 10, maxSubjectsPerRun: 100, maxFraction: 1, pause: .fixed(.milliseconds(200)),
                    parallel: 4))
        #expect(policy.canonicalJSON.contains(#""parallel":4"#))
        #expect(policy.state == .draft)
        #expect(policy.schedule == nil)
        #expect(try Policy(parsing: policy.canonicalJSON) == policy)
        // Codable through Foundation carries decimals as Double: 12.50 comes back as 12.5.
        var coded = try JSONDecoder().decode(Policy.self, from: JSONEncoder().encode(policy))
        guard case .anonymize(var columns) = coded.dataPoints[0].action else { return }
        #expect(columns[10].strategy == .set(.decimal("12.5")))
        columns[10].strategy = .set(.decimal("12.50"))
        coded.dataPoints[0].action = .anonymize(columns)
        #expect(coded == policy)
    }

    @Test(
        "other rules",
        arguments: [
            (
                "{ older_than: 7 years, created: created_at }",
                Rule.olderThan(RetentionPeriod(months: 84), created: column("created_at"))
            ),
            (
                "{ after: 2 years, event: employment_ended_at }",
                .after(RetentionPeriod(months: 24), event: column("employment_ended_at"))
            ),
            (
                "{ consent_revoked: P30D, consent: gallra }",
                .consentRevoked(grace: RetentionPeriod(days: 30), consent: .gallra)
            ),
            ("on_request", .onRequest),
            ("\"on_request\"", .onRequest),
            (
                "{ inactive_for: 18 months, activity: { table: shop.order, column: placed_at } }",
                .inactiveFor(
                    RetentionPeriod(months: 18),
                    activity: .latestRow(table: table("shop", "order"), column: column("placed_at"), via: nil))
            ),
        ])
    func rules(expires: String, rule: Rule) throws {
        let policy = try Policy(
            parsing: """
                policy: p
                subject: { table: t, key: id }
                expires: \(expires)
                data: [ { table: t, delete: true } ]
                """)
        #expect(policy.rule == rule)
        #expect(try Policy(parsing: policy.canonicalJSON) == policy)
    }

    @Test(
        "expires: on_request is a scalar: near misses and other scalars are refused with the spelling to use",
        arguments: [
            (
                "on-request",
                "expires: \"on-request\" is not a rule; write expires: on_request (lower case, with an underscore)"
            ),
            (
                "OnRequest",
                "expires: \"OnRequest\" is not a rule; write expires: on_request (lower case, with an underscore)"
            ),
            (
                "{ on_request: true }",
                "expires: on_request is written as a scalar, not as a key: write expires: on_request (the policy acts on pending erasure requests)"
            ),
            (
                "never",
                "expires: \"never\" is not a rule; give a mapping like { inactive_for: 1 year, activity: last_seen_at }, or expires: on_request to act on erasure requests"
            ),
        ])
    func onRequestNearMisses(expires: String, message: String) throws {
        let file = PolicyFile(
            parsing: """
                policy: p
                subject: { table: t, key: id }
                expires: \(expires)
                data: [ { table: t, delete: true } ]
                """, path: "p.yaml")
        #expect(file.diagnostics.map(\.message) == [message])
        #expect(file.diagnostics.first?.path == (expires.hasPrefix("{") ? "expires.on_request" : "expires"))
    }

    @Test("the canonical form of expires: on_request is the string")
    func onRequestCanonical() throws {
        let policy = try Policy(
            parsing: """
                policy: p
                subject: { table: t, key: id }
                expires: on_request
                data: [ { table: t, delete: true } ]
                """)
        #expect(policy.canonicalJSON.contains(#""expires":"on_request""#))
    }

    @Test(
        "null in exemptions: equals: null is is: null, in may hold null, not_in may not",
        arguments: [
            ("{ column: c, equals: null }", Exemption.column(column("c"), .is(.null))),
            ("{ column: c, in: [a, null] }", .column(column("c"), .in([.string("a"), .null]))),
        ])
    func nullInExemptions(exemption: String, expected: Exemption) throws {
        let policy = try Policy(
            parsing: """
                policy: p
                subject: { table: t, key: id }
                expires: { older_than: 1 year, created: created_at }
                except: [ \(exemption) ]
                data: [ { table: t, delete: true } ]
                """)
        #expect(policy.exemptions == [expected])
        #expect(try Policy(parsing: policy.canonicalJSON) == policy)
    }

    @Test func nullInANotInListIsRefused() {
        let file = PolicyFile(
            parsing: """
                policy: p
                subject: { table: t, key: id }
                expires: { older_than: 1 year, created: created_at }
                except: [ { column: c, not_in: [a, null] } ]
                data: [ { table: t, delete: true } ]
                """)
        #expect(file.policies.isEmpty)
        #expect(file.diagnostics.map(\.message).contains { $0.contains("not_in never exempts a null column") })
    }

    @Test("a file may hold several policies separated by ---")
    func severalPolicies() {
        let file = PolicyFile(
            parsing: """
                policy: one
                subject: { table: t, key: id }
                expires: { older_than: 1 year, created: created_at }
                data: [ { table: t, delete: true } ]
                ---
                policy: two
                subject: { table: t, key: id }
                expires: { older_than: 2 years, created: created_at }
                data: [ { table: t, delete: true } ]
                ---
                """)
        #expect(file.diagnostics == [])
        #expect(file.policies.map(\.policy.name.rawValue) == ["one", "two"])
        #expect(file.policies[1].source.location(of: "policy")?.line == 6)
    }
}
