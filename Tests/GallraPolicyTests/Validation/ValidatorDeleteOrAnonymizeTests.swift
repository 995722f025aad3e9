import Foundation
import GallraPolicy
import Testing

/// Data points that give `delete: true` and `anonymize` together: rows are deleted where nothing references them
/// any more, anonymized otherwise.
@Suite("Validator: delete where possible, anonymize otherwise")
struct ValidatorDeleteOrAnonymizeTests {
    /// Orders deleted where nothing references them, the kept ones anonymized and detached; the customer deleted.
    static let erasure = customerPolicy(
        """
          - { table: shop.order_line, through: shop.order, delete: true }
          - { table: shop.wishlist_item, delete: true }
          - { table: shop.order, delete: true, anonymize: { email: fake_email, full_name: redact, customer_id: null } }
          - { table: shop.address, delete: true, anonymize: { street: redact, phone: null } }
          - { table: shop.customer, delete: true }
        """)

    @Test("both keys decode to one action, ordered by column, and survive canonical JSON")
    func decodesAndRoundTrips() throws {
        let policy = try Policy(parsing: Self.erasure)
        #expect(
            policy.dataPoints[2].action
                == .deleteOrAnonymize([
                    ColumnAnonymization(column: ColumnName("customer_id"), strategy: .null),
                    ColumnAnonymization(column: ColumnName("email"), strategy: .fakeEmail),
                    ColumnAnonymization(column: ColumnName("full_name"), strategy: .redact(nil)),
                ]))
        let json = policy.canonicalJSON
        #expect(
            json.contains(
                #"{"anonymize":{"customer_id":"null","email":"fake_email","full_name":"redact"},"delete":true,"table":"shop.order"}"#
            ))
        let again = try Policy(parsing: json, file: "stored.json")
        #expect(again == policy)
        #expect(again.canonicalJSON == json)
    }

    @Test("a delete that kept rows would block is no error: the kept rows are anonymized")
    func restrictDoesNotBlock() throws {
        // shop.order references shop.customer ON DELETE RESTRICT: deleting customers the policy keeps orders of is
        // refused; deleting-or-anonymizing them is not, and the customer's own delete is not blocked by kept orders
        // that the anonymization detaches.
        let plain = validation(customerPolicy("  - { table: shop.customer, delete: true }"))
        #expect(plain.errors.map(\.message).contains { $0.contains("is blocked by shop.order") })
        let combined = validation(
            customerPolicy(
                "  - { table: shop.customer, delete: true, anonymize: { email: fake_email, full_name: redact } }"))
        #expect(combined.errors.isEmpty, "\(combined.errors)")
        let plan = try #require(combined.resolved)
        #expect(plan.steps.count == 1)
        guard case .deleteOrAnonymize(let columns) = plan.steps[0].action else {
            Issue.record("expected a delete-or-anonymize, got \(plan.steps[0].action)")
            return
        }
        #expect(columns.map(\.column.name) == ["email", "full_name"])
        #expect(
            plan.steps[0].referencedBy.map(\.foreignKey) == [
                "cart_customer_id_fkey", "newsletter_consent_customer_id_fkey", "order_customer_id_fkey",
                "wishlist_item_customer_id_fkey",
            ])
        // No cascade is announced: a referenced row is kept, so nothing cascades from it.
        #expect(!combined.warnings.contains { $0.message.contains("CASCADE") })
    }

    @Test("kept rows still referencing a deleted parent block it, unless the anonymization detaches them")
    func keptRowsMustBeDetached() {
        let attached = validation(
            customerPolicy(
                """
                  - { table: shop.wishlist_item, delete: true }
                  - { table: shop.order, delete: true, anonymize: { email: fake_email } }
                  - { table: shop.customer, delete: true }
                """))
        #expect(
            attached.errors.map(\.message) == [
                "deleting shop.customer (data[2]) is blocked by shop.order through order_customer_id_fkey (ON DELETE RESTRICT): the policy keeps those rows. Delete them too (- { table: shop.order, delete: true }), or detach them: add customer_id: null to the anonymize of shop.order (data[1])"
            ])
        let detached = validation(Self.erasure)
        #expect(detached.errors.isEmpty, "\(detached.errors)")
    }

    @Test("the plan applies children first and says what happens to kept and shared rows")
    func planOrderAndText() throws {
        let plan = try #require(validation(Self.erasure).resolved)
        #expect(
            plan.steps.map { "\($0.table.name) \($0.action.kind)" } == [
                "order_line delete", "wishlist_item delete", "order delete_or_anonymize", "customer delete",
                "address delete_or_anonymize",
            ])
        #expect(plan.steps[2].relation == .owned)
        #expect(plan.steps[4].relation == .referenced)
        #expect(plan.steps[2].referencedBy.map(\.foreignKey) == ["order_line_order_id_fkey"])
        let text = plan.render()
        #expect(
            text.contains(
                #"3. delete    shop."order"        or, where still referenced, anonymize customer_id: null, email: fake_email, full_name: redact   via"#
            ), "\(text)")
        #expect(
            text.contains(
                "(rows still referenced when the step runs (by shop.order_line) are anonymized instead of deleted)"))
        #expect(text.contains("(rows the subject points to; shared rows are anonymized, the others deleted)"))
    }

    @Test("the resolved action round-trips through JSON, and a stored plan without it still decodes")
    func resolvedJSON() throws {
        let plan = try #require(validation(Self.erasure).resolved)
        let data = try JSONEncoder().encode(plan)
        #expect(try JSONDecoder().decode(ResolvedPolicy.self, from: data) == plan)
        #expect(String(decoding: data, as: UTF8.self).contains(#""kind":"delete_or_anonymize""#))
        let old = try JSONDecoder().decode(
            ResolvedStep.Action.self, from: Data(#"{"kind":"anonymize","columns":[]}"#.utf8))
        #expect(old == .anonymize([]))
    }

    @Test(
        "an invalid anonymization is refused as for any anonymize",
        arguments: [
            (
                "{ email: fake_email, nickname: redact }",
                "anonymize: column nickname does not exist in shop.order"
            ),
            (
                "{ email: null }",
                "anonymize: email is NOT NULL in shop.order, so null cannot be written; use redact"
            ),
            (
                "{ total: fake_email }",
                "anonymize: fake_email needs a text column; total is numeric(12,2)"
            ),
            (
                "{ shipping_address_id: redact }",
                "anonymize: shipping_address_id links shop.order to shop.address (order_shipping_address_id_fkey); only null may change it, which detaches the row. redact would point it at another row or break the reference"
            ),
        ])
    func invalidAnonymization(anonymize: String, message: String) throws {
        let result = validation(
            customerPolicy("  - { table: shop.order, delete: true, anonymize: \(anonymize) }"))
        #expect(result.resolved == nil)
        let messages = result.errors.map(\.message)
        #expect(messages.contains { $0.hasPrefix(message) }, "\(messages)")
        #expect(result.errors.allSatisfy { $0.path?.hasPrefix("data[0].anonymize") == true }, "\(result.errors)")
    }

    @Test("the fix proposed for a kept row is never to delete it")
    func fixesKeepTheRows() {
        let combined = validation(
            customerPolicy("  - { table: shop.order, delete: true, anonymize: { email: null, id: null } }"))
        #expect(
            combined.errors.map(\.message) == [
                "anonymize: email is NOT NULL in shop.order, so null cannot be written; use redact",
                "anonymize: id is part of the primary key of shop.order; changing it would make the row another row. Anonymize other columns",
            ])
        let plain = validation(customerPolicy("  - { table: shop.order, anonymize: { email: null } }"))
        #expect(
            plain.errors.map(\.message) == [
                "anonymize: email is NOT NULL in shop.order, so null cannot be written; use redact, or delete the rows"
            ])
    }

    @Test("the subject key is not anonymized on the subject table, whatever the action")
    func subjectKey() throws {
        let file = PolicyFile(
            parsing: customerPolicy("  - { table: shop.customer, delete: true, anonymize: { id: null } }"),
            path: "p.yaml")
        #expect(
            file.diagnostics.map(\.message).contains {
                $0.hasPrefix("anonymize: id is the subject key of shop.customer")
            })
    }

    @Test("the role needs DELETE, UPDATE and SELECT on the table, and SELECT on the tables referencing it")
    func privileges() throws {
        var catalog = Fixtures.demoShop
        catalog.tables[shop("order")]?.privileges = [.select, .delete]
        catalog.tables[shop("order_line")]?.privileges = [.select, .delete, .update]
        catalog.tables[shop("cart")]?.privileges = [.delete, .update]
        let result = validation(
            customerPolicy("  - { table: shop.customer, delete: true, anonymize: { email: fake_email } }"),
            against: catalog)
        #expect(result.errors.map(\.message).contains { $0.contains("lacks SELECT on shop.cart") })
        let orders = validation(
            customerPolicy("  - { table: shop.order, delete: true, anonymize: { email: fake_email } }"),
            against: catalog)
        #expect(orders.errors.map(\.message).contains { $0.contains("lacks UPDATE on shop.order") })
    }
}
