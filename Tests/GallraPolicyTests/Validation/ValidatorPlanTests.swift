import Foundation
import GallraPolicy
import Testing

// `designExample` (PolicyDocumentTests.swift) is the documentation's example policy; its order anonymize keeps `customer_id`.

/// The example fixed as the validator proposes: the kept orders are detached from the deleted customer.
let fixedExample = designExample.replacingOccurrences(
    of: "birth_date: truncate(year) }", with: "birth_date: truncate(year), customer_id: null }")

@Suite("Validator: resolved plans")
struct ValidatorPlanTests {
    @Test("the documentation's example policy is refused: shop.order keeps rows that block deleting the customer")
    func designExampleIsBlocked() {
        let result = validation(designExample)
        #expect(result.resolved == nil)
        let errors = result.errors
        #expect(errors.count == 1)
        let error = try! #require(errors.first)
        #expect(error.location?.line == 19)
        #expect(error.location?.file == "p.yaml")
        #expect(error.path == "data[5].table")
        #expect(
            error.message
                == "deleting shop.customer (data[5]) is blocked by shop.order through order_customer_id_fkey (ON DELETE RESTRICT): the policy keeps those rows. Delete them too (- { table: shop.order, delete: true }), or detach them: add customer_id: null to the anonymize of shop.order (data[2])"
        )
    }

    @Test("the fixed example resolves to a plan in the order the engine applies it")
    func fixedExampleResolves() throws {
        let result = validation(fixedExample)
        #expect(result.errors.isEmpty, "\(result.errors)")
        let plan = try #require(result.resolved)
        #expect(plan.subject.table == shop("customer"))
        #expect(plan.subject.key == ColumnName("id"))
        #expect(plan.subject.keyType == "bigint")
        #expect(plan.rule.kind == .inactiveFor)
        #expect(plan.rule.index == "customer_last_seen_at_idx")
        // Written by hand: lines before their order; the order detached after the lines were found through
        // it; the subject row after everything it owns; the address it points to last.
        let order = plan.steps.map { "\($0.table.name) \($0.action.kind)" }
        #expect(
            order == [
                "order_line delete", "wishlist_item delete", "order anonymize", "newsletter_log delete",
                "customer delete", "address anonymize",
            ])
        #expect(plan.steps.map(\.dataPoint) == [1, 0, 2, 4, 5, 3])
        #expect(plan.steps.map(\.relation) == [.owned, .owned, .owned, .owned, .subject, .referenced])
        // The address is found through the customer row, which step 5 deletes: identify its rows first.
        #expect(plan.steps[5].identifyRowsBefore == 4)
        #expect(plan.steps.prefix(5).allSatisfy { $0.identifyRowsBefore == nil })
        #expect(
            plan.steps[5].referencedBy.map(\.foreignKey) == [
                "customer_address_id_fkey", "order_shipping_address_id_fkey", "store_address_id_fkey",
            ])

        let lines = plan.steps[0].path
        #expect(
            lines == [
                JoinHop(
                    from: shop("customer"), fromColumns: [ColumnName("id")], to: shop("order"),
                    toColumns: [ColumnName("customer_id")], direction: .child, foreignKey: "order_customer_id_fkey",
                    onDelete: .restrict, via: nil),
                JoinHop(
                    from: shop("order"), fromColumns: [ColumnName("id")], to: shop("order_line"),
                    toColumns: [ColumnName("order_id")], direction: .child, foreignKey: "order_line_order_id_fkey",
                    onDelete: .noAction, via: nil),
            ])
        #expect(
            plan.steps[3].path == [
                JoinHop(
                    from: shop("customer"), fromColumns: [ColumnName("id")], to: shop("newsletter_log"),
                    toColumns: [ColumnName("customer_ref")], direction: .child, foreignKey: nil, onDelete: nil,
                    via: ColumnName("customer_ref"))
            ])
        #expect(
            plan.steps[5].path == [
                JoinHop(
                    from: shop("customer"), fromColumns: [ColumnName("address_id")], to: shop("address"),
                    toColumns: [ColumnName("id")], direction: .parent, foreignKey: "customer_address_id_fkey",
                    onDelete: .noAction, via: nil)
            ])
        guard case .anonymize(let columns) = plan.steps[2].action else {
            Issue.record("the order is anonymized")
            return
        }
        #expect(columns.map(\.column.name) == ["birth_date", "customer_id", "email", "full_name", "phone"])
        #expect(columns.first { $0.column.name == "customer_id" }?.detaches == "order_customer_id_fkey")
        #expect(columns.first { $0.column.name == "full_name" }?.value == .string("[redacted]"))
    }

    @Test("the fixed example warns about cascades it does not name and the unindexed newsletter link")
    func fixedExampleWarnings() {
        let warnings = validation(fixedExample).warnings
        #expect(
            warnings.map(\.message) == [
                "no index on shop.newsletter_log (customer_ref): finding the rows of each batch's subjects reads the whole table; create one: CREATE INDEX CONCURRENTLY ON shop.newsletter_log (customer_ref);",
                "deleting shop.customer also deletes rows of shop.cart through cart_customer_id_fkey (ON DELETE CASCADE); list it in the policy to make that explicit: - { table: shop.cart, delete: true }",
                "deleting shop.cart also deletes rows of shop.cart_item through cart_item_cart_id_fkey (ON DELETE CASCADE); list it in the policy to make that explicit: - { table: shop.cart_item, through: shop.cart, delete: true }",
                "deleting shop.customer also deletes rows of shop.newsletter_consent through newsletter_consent_customer_id_fkey (ON DELETE CASCADE); list it in the policy to make that explicit: - { table: shop.newsletter_consent, delete: true }",
            ])
        #expect(warnings.map { $0.location?.line } == [18, 19, 19, 19])
    }

    @Test("the plan reads as the user wrote it, with exact names and join paths")
    func rendering() throws {
        let plan = try #require(validation(fixedExample).resolved)
        let expected = """
            policy inactive-customers (active), subject shop.customer by id
              expires: last_seen_at older than 1 year (index customer_last_seen_at_idx)
              except: legal_hold is true
              1. delete    shop.order_line      via shop.order_line.order_id -> shop."order".id -> shop."order".customer_id -> shop.customer.id [order_line_order_id_fkey, order_customer_id_fkey]
              2. delete    shop.wishlist_item   via shop.wishlist_item.customer_id -> shop.customer.id [wishlist_item_customer_id_fkey]
              3. anonymize shop."order"         birth_date: truncate(year), customer_id: null, email: fake_email, full_name: redact, phone: null   via shop."order".customer_id -> shop.customer.id [order_customer_id_fkey]
              4. delete    shop.newsletter_log  via shop.newsletter_log.customer_ref -> shop.customer.id [no foreign key]
              5. delete    shop.customer        the subject row
                 (also deletes rows of shop.cart through cart_customer_id_fkey (ON DELETE CASCADE))
                 (also deletes rows of shop.cart_item through cart_item_cart_id_fkey (ON DELETE CASCADE))
                 (also deletes rows of shop.newsletter_consent through newsletter_consent_customer_id_fkey (ON DELETE CASCADE))
              6. anonymize shop.address         phone: null, street: redact   via shop.address.id -> shop.customer.address_id [customer_address_id_fkey]
                 (rows the subject points to; shared rows are retained)
                 (its rows are identified before step 5, which breaks the path to them)
            """
        #expect(plan.render() == expected)
        #expect(plan.description == expected)
    }

    @Test("the plan round-trips through JSON")
    func json() throws {
        let plan = try #require(validation(fixedExample).resolved)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(plan)
        let decoded = try JSONDecoder().decode(ResolvedPolicy.self, from: data)
        #expect(decoded == plan)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""action":{"columns":[{"column":"birth_date""#))
        #expect(text.contains(#""action":{"kind":"delete"}"#))
        #expect(text.contains(#""direction":"parent""#))
        #expect(text.contains(#""table":"shop.order""#))
    }
}

extension ResolvedStep.Action {
    var kind: String {
        switch self {
        case .delete: "delete"
        case .anonymize: "anonymize"
        case .deleteOrAnonymize: "delete_or_anonymize"
        }
    }
}
