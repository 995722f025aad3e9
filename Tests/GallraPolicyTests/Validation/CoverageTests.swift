import GallraPolicy
import Testing

/// The shipped policies (config/policies), as the demo shop stores them.
private let shippedPolicies = """
    policy: inactive-customers
    state: active
    subject: { table: shop.customer, key: id }
    expires: { inactive_for: 1 year, activity: last_seen_at }
    data:
      - { table: shop.wishlist_item, delete: true }
      - { table: shop.cart_item, through: shop.cart, delete: true }
      - { table: shop.cart, delete: true }
      - { table: shop.newsletter_consent, delete: true }
      - { table: shop.newsletter_log, via: customer_ref, delete: true }
      - { table: shop.order, anonymize: { email: fake_email, customer_id: null } }
      - { table: shop.address, anonymize: { street: redact, phone: null } }
      - { table: shop.customer, delete: true }
    ---
    policy: revoked-newsletter-consent
    state: draft
    subject: { table: shop.customer, key: id }
    expires: { inactive_for: 1 year, activity: last_seen_at }
    data:
      - { table: shop.newsletter_log, via: customer_ref, delete: true }
    ---
    policy: former-employees
    state: active
    subject: { table: shop.employee, key: id }
    expires: { after: 2 years, event: employment_ended_on }
    data:
      - { table: shop.employee, anonymize: { full_name: redact } }
    """

private func policies(_ yaml: String = shippedPolicies, disabling: String? = nil) -> [Policy] {
    let file = PolicyFile(parsing: yaml, path: "policies.yaml")
    #expect(file.diagnostics.filter { $0.severity == .error }.isEmpty, "\(file.diagnostics)")
    return file.policies.map(\.policy).map { policy in
        var policy = policy
        if policy.name.rawValue == disabling { policy.state = .disabled }
        return policy
    }
}

private func tables(_ coverage: Coverage) -> [String] {
    coverage.tables.map { "\($0.table) from \($0.pathText)" }
}

private func columns(_ coverage: Coverage) -> [String] {
    coverage.columns.map { "\($0.table).\($0.column)" }
}

@Suite("Coverage")
struct CoverageTests {
    @Test func subjectTablesWithoutAnOnRequestPolicyAreWarnedAbout() {
        #expect(
            Coverage(policies: policies(), catalog: Fixtures.demoShop).withoutErasure.map(\.description) == [
                "shop.customer", "shop.employee",
            ])
        let erasure = """
            ---
            policy: erasure-requests
            state: active
            subject: { table: shop.customer, key: id }
            expires: on_request
            data:
              - { table: shop.customer, delete: true }
            """
        let covered = Coverage(policies: policies(shippedPolicies + "\n" + erasure), catalog: Fixtures.demoShop)
        #expect(covered.withoutErasure.map(\.description) == ["shop.employee"])
        // A disabled on-request policy answers no request.
        let disabled = Coverage(
            policies: policies(shippedPolicies + "\n" + erasure, disabling: "erasure-requests"),
            catalog: Fixtures.demoShop)
        #expect(disabled.withoutErasure.map(\.description) == ["shop.customer", "shop.employee"])
        #expect(
            Coverage.erasureWarning(QualifiedName(schema: "shop", name: "employee"))
                == "erasure requests for shop.employee will be refused: no policy over it has expires: on_request; add one that says what an erasure deletes and anonymizes (docs/requests.md)"
        )
    }

    @Test func theDemoShopLeavesOutOrderLinesAndTwoNames() {
        let coverage = Coverage(policies: policies(), catalog: Fixtures.demoShop)
        #expect(
            tables(coverage) == [
                "shop.order_line from shop.customer <- shop.order (customer_id) <- shop.order_line (order_id)"
            ])
        #expect(
            coverage.tables.first?.path.map(\.foreignKey) == ["order_customer_id_fkey", "order_line_order_id_fkey"])
        #expect(columns(coverage) == ["shop.product.name", "shop.store.name"])
        #expect(!coverage.isEmpty)
    }

    @Test func aDisabledPolicyCoversNothing() {
        let coverage = Coverage(
            policies: policies(disabling: "inactive-customers"), catalog: Fixtures.demoShop)
        #expect(
            tables(coverage) == [
                "shop.cart from shop.customer <- shop.cart (customer_id)",
                "shop.cart_item from shop.customer <- shop.cart (customer_id) <- shop.cart_item (cart_id)",
                "shop.newsletter_consent from shop.customer <- shop.newsletter_consent (customer_id)",
                "shop.order from shop.customer <- shop.order (customer_id)",
                "shop.order_line from shop.customer <- shop.order (customer_id) <- shop.order_line (order_id)",
                "shop.wishlist_item from shop.customer <- shop.wishlist_item (customer_id)",
            ])
        // The draft still covers its subject table; foreign key columns (customer_id, shipping_address_id) are
        // left out.
        #expect(
            columns(coverage) == [
                "shop.address.phone", "shop.order.email", "shop.order.full_name", "shop.order.phone",
                "shop.order.birth_date", "shop.product.name", "shop.store.name",
            ])
    }

    @Test func everyTableCoveredIsEmpty() {
        let yaml =
            shippedPolicies + """

                ---
                policy: the-rest
                state: active
                subject: { table: shop.customer, key: id }
                expires: { inactive_for: 1 year, activity: last_seen_at }
                data:
                  - { table: shop.order_line, through: shop.order, delete: true }
                  - { table: shop.product, delete: true }
                  - { table: shop.store, delete: true }
                """
        let coverage = Coverage(policies: policies(yaml), catalog: Fixtures.demoShop)
        #expect(coverage.tables.isEmpty)
        #expect(coverage.columns.isEmpty)
        #expect(coverage.isEmpty)
    }

    @Test func noPoliciesLeaveEveryPersonalColumnOut() {
        let coverage = Coverage(policies: [], catalog: Fixtures.demoShop)
        #expect(coverage.tables.isEmpty, "no subject table: no table belongs to a subject")
        #expect(columns(coverage).contains("shop.customer.email"))
        #expect(columns(coverage).contains("shop.employee.full_name"))
        #expect(!columns(coverage).contains("shop.customer.legal_hold"))
    }

    /// Quoted mixed-case names, two keys between the same tables (the first by constraint name makes the path),
    /// a partition (reached through its parent), a view (never listed).
    @Test func edgeCases() {
        let coverage = Coverage(policies: policies(), catalog: Fixtures.edgeCases)
        #expect(
            tables(coverage) == [
                "\"Sales\".\"OrderItems\" from shop.customer <- \"Sales\".\"OrderItems\" (\"CustomerId\")",
                "shop.events from shop.customer <- shop.events (customer_id)",
                "shop.order_line from shop.customer <- shop.order (customer_id) <- shop.order_line (order_id)",
                "shop.ticket from shop.customer <- shop.ticket (closed_by)",
            ])
        #expect(!columns(coverage).contains("shop.customer_summary.email"))
    }

    @Test(arguments: [
        ("email", "email"), ("contact_email", "email"), ("ContactEmail", "email"), ("email2", "email"),
        ("full_name", "name"), ("name", "name"), ("lastname", "lastname"), ("ip_address", "ip"),
        ("client_ip", "ip"), ("birth_date", "birth"), ("dateOfBirth", "birth"), ("phone_number", "phone"),
        ("billing_address", "address"),
    ])
    func personalNames(column: String, word: String) {
        #expect(Coverage.personalWord(in: column) == word)
    }

    @Test(arguments: ["named_by", "renamed_at", "zip", "shipped_at", "emailed_at", "nickname_id_x", "id", "tip"])
    func namesThatDoNotLookPersonal(column: String) {
        #expect(Coverage.personalWord(in: column) == nil)
    }
}
