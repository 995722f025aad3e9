import Foundation
import GallraPolicy
import Testing

@Suite("Validator: resolution")
struct ValidatorResolutionTests {
    func resolved(
        _ yaml: String, against catalog: Catalog = Fixtures.demoShop,
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) throws -> ResolvedPolicy {
        let result = validation(yaml, against: catalog, sourceLocation: sourceLocation)
        #expect(result.errors.isEmpty, "\(result.errors)", sourceLocation: sourceLocation)
        return try #require(result.resolved, sourceLocation: sourceLocation)
    }

    @Test("unqualified names resolve through the search path to schema-qualified names")
    func searchPath() throws {
        let plan = try resolved(
            """
            policy: p
            subject: { table: customer, key: id }
            expires: { inactive_for: 1 year, activity: last_seen_at }
            data:
              - { table: newsletter_log, via: customer_ref, delete: true }
            """, against: shopOnSearchPath)
        #expect(plan.subject.table == shop("customer"))
        #expect(plan.steps.map(\.table) == [shop("newsletter_log")])
        #expect(plan.steps[0].path.map(\.from) == [shop("customer")])
    }

    @Test("quoted mixed-case names are taken exactly")
    func mixedCase() throws {
        let plan = try resolved(
            customerPolicy("  - { table: '\"Sales\".\"OrderItems\"', anonymize: { '\"Note\"': redact } }"),
            against: Fixtures.edgeCases)
        let step = try #require(plan.steps.first)
        #expect(step.table == QualifiedName(schema: "Sales", name: "OrderItems"))
        #expect(step.path.first?.toColumns == [ColumnName("CustomerId")])
        #expect(step.path.first?.foreignKey == "OrderItems_CustomerId_fkey")
        guard case .anonymize(let columns) = step.action else {
            Issue.record("anonymize")
            return
        }
        #expect(columns.map(\.column) == [ColumnName("Note")])
        #expect(plan.render().contains(#"anonymize "Sales"."OrderItems"  "Note": redact"#))
    }

    @Test("a partitioned table works as a table")
    func partitioned() throws {
        let plan = try resolved(customerPolicy("  - { table: shop.events, delete: true }"), against: Fixtures.edgeCases)
        #expect(plan.steps.map(\.table) == [shop("events")])
        #expect(plan.steps[0].isPartitioned)
        #expect(plan.steps[0].path.first?.foreignKey == "events_customer_id_fkey")
    }

    @Test("a unique NOT NULL column is a subject key")
    func uniqueKey() throws {
        let plan = try resolved(
            customerPolicy("  - { table: shop.customer, anonymize: { phone: null } }").replacingOccurrences(
                of: "key: id", with: "key: email"))
        #expect(plan.subject.key == ColumnName("email"))
        #expect(plan.subject.keyType == "text")
    }

    @Test("via picks one of two foreign keys; a via column without a foreign key links compatible types")
    func via() throws {
        let opened = try resolved(
            customerPolicy("  - { table: shop.ticket, via: opened_by, delete: true }"), against: Fixtures.edgeCases)
        #expect(opened.steps[0].path.first?.foreignKey == "ticket_opened_by_fkey")
        #expect(opened.steps[0].path.first?.via == ColumnName("opened_by"))
        let integer = try resolved(
            customerPolicy("  - { table: shop.ticket, via: ref_int, delete: true }"), against: Fixtures.edgeCases)
        let hop = try #require(integer.steps[0].path.first)
        #expect(hop.foreignKey == nil)
        #expect(hop.toColumns == [ColumnName("ref_int")])
        #expect(hop.fromColumns == [ColumnName("id")])
        #expect(hop.direction == .child)
    }

    @Test("the rule: the latest related row, consent, an event column")
    func rules() throws {
        let latest = try resolved(
            customerPolicy("  - { table: shop.customer, anonymize: { phone: null } }").replacingOccurrences(
                of: "activity: last_seen_at", with: "activity: { table: shop.order, column: placed_at }"))
        #expect(latest.rule.table == shop("order"))
        #expect(latest.rule.column == ColumnName("placed_at"))
        #expect(latest.rule.path.map(\.foreignKey) == ["order_customer_id_fkey"])
        #expect(latest.rule.index == "order_customer_id_idx")

        let consent = try resolved(
            customerPolicy("  - { table: shop.customer, anonymize: { phone: null } }").replacingOccurrences(
                of: "inactive_for: 1 year, activity: last_seen_at",
                with: "consent_revoked: 30 days, consent: { table: shop.newsletter_consent, revoked_at: revoked_at }"))
        #expect(consent.rule.kind == .consentRevoked)
        #expect(consent.rule.index == "newsletter_consent_customer_id_channel_key")
        #expect(consent.rule.path.first?.toColumns == [ColumnName("customer_id")])

        let employee = try resolved(
            """
            policy: former-employees
            subject: { table: shop.employee, key: id }
            expires: { after: 2 years, event: employment_ended_on }
            data:
              - { table: shop.employee, anonymize: { national_id: hash, email: fake_email, full_name: redact } }
            """)
        #expect(employee.rule.kind == .after)
        #expect(employee.rule.index == "employee_employment_ended_on_idx")
        #expect(employee.steps.map(\.relation) == [.subject])
    }

    @Test("a related-row exemption resolves its path and checks its values")
    func exemption() throws {
        let plan = try resolved(
            customerPolicy(
                "  - { table: shop.customer, anonymize: { phone: null } }",
                except: "except: [ { exists: shop.order_line, through: shop.order, where: { qty: { in: [1, 2] } } } ]"))
        let exemption = try #require(plan.exemptions.first)
        #expect(exemption.table == shop("order_line"))
        #expect(exemption.path.map(\.foreignKey) == ["order_customer_id_fkey", "order_line_order_id_fkey"])
        #expect(plan.render().contains("except: a row of shop.order_line exists where qty in (1, 2), via"))
    }

    @Test("deleting the address the subject points to: after the subject row, shared rows retained")
    func parentDelete() throws {
        let result = validation(
            customerPolicy(
                """
                  - { table: shop.address, delete: true }
                  - { table: shop.customer, delete: true }
                  - { table: shop.wishlist_item, delete: true }
                  - { table: shop.order, anonymize: { customer_id: null, email: fake_email } }
                """))
        #expect(result.errors.isEmpty, "\(result.errors)")
        let plan = try #require(result.resolved)
        #expect(plan.steps.map(\.table.name) == ["wishlist_item", "order", "customer", "address"])
        let address = plan.steps[3]
        #expect(address.relation == .referenced)
        #expect(address.identifyRowsBefore == 2)
        #expect(
            address.notes == [
                "rows the subject points to; shared rows are retained",
                "rows still referenced by shop.order through order_shipping_address_id_fkey are retained",
                "rows still referenced by shop.store through store_address_id_fkey are retained",
                "its rows are identified before step 3, which breaks the path to them",
            ])
    }

    @Test("a path through a detached table is followed before the detaching step")
    func detachOrder() throws {
        let plan = try resolved(
            customerPolicy(
                """
                  - { table: shop.order, anonymize: { customer_id: null } }
                  - { table: shop.order_line, through: shop.order, anonymize: { qty: { set: 1 } } }
                """))
        #expect(plan.steps.map(\.table.name) == ["order_line", "order"])
        #expect(plan.steps.allSatisfy { $0.identifyRowsBefore == nil })
    }

    @Test("policies acting on the same table or column are reported once, at the later policy")
    func overlap() throws {
        let first = try resolved(fixedExample)
        let second = try resolved(
            customerPolicy(
                """
                  - { table: shop.newsletter_log, via: customer_ref, delete: true }
                  - { table: shop.order, anonymize: { email: fake_email, phone: null } }
                """, name: "newsletter"))
        let diagnostics = overlapDiagnostics([first, second])
        #expect(
            diagnostics.map(\.message) == [
                "policy newsletter deletes shop.newsletter_log, as policy inactive-customers does (data[4] at p.yaml:18:5); a subject expiring under both is processed by whichever runs first. Check that both policies mean it",
                "policy newsletter anonymizes shop.order (email, phone), as policy inactive-customers does (data[2] at p.yaml:15:5); a subject expiring under both is processed by whichever runs first. Check that both policies mean it",
            ])
        #expect(diagnostics.allSatisfy { $0.severity == .warning })
        #expect(diagnostics.map { $0.location?.line } == [7, 8])
        #expect(overlapDiagnostics([first]).isEmpty)
    }
}
