import Foundation
import GallraPolicy
import Testing

/// A consent policy on the demo shop's customers that collects only with consent, with `data` lines and `lines`
/// after its name.
private func collecting(_ data: String, lines: String = "legal_basis: consent", table: String = "shop.customer")
    -> String
{
    """
    policy: newsletter
    \(lines)
    collect: with_consent
    subject: { table: \(table), key: id }
    expires: { consent_revoked: 30 days, consent: gallra }
    data:
    \(data)
    """
}

@Suite("collect: with_consent")
struct ValidatorCollectionTests {
    @Test("the key is read, written in the canonical form only when it says with_consent, and round-trips")
    func decoded() throws {
        let policy = try Policy(
            parsing: collecting("  - { table: shop.newsletter_log, via: customer_ref, delete: true }"))
        #expect(policy.collection == .withConsent)
        #expect(policy.canonicalJSON.contains(#""collect":"with_consent""#))
        #expect(try Policy(parsing: policy.canonicalJSON) == policy)
        let always = try Policy(
            parsing: collecting("  - { table: shop.customer, delete: true }").replacingOccurrences(
                of: "collect: with_consent", with: "collect: always"))
        #expect(always.collection == .always)
        #expect(!always.canonicalJSON.contains("collect"))
    }

    @Test("an unknown value is refused with a suggestion and the choices")
    func unknownValue() throws {
        let file = PolicyFile(
            parsing: collecting("  - { table: shop.customer, delete: true }").replacingOccurrences(
                of: "collect: with_consent", with: "collect: with_concent"), path: "p.yaml")
        let error = try #require(file.diagnostics.first { $0.severity == .error })
        #expect(
            error.message
                == #"collect: "with_concent" is not a way to collect; did you mean with_consent?; use with_consent (collect only while the subject's consent is in force) or always (the default)"#
        )
        #expect(error.location == SourceLocation(file: "p.yaml", line: 3, column: 10))
    }

    @Test("each data-point table that links to the subject directly is guarded, once per link")
    func guardedTables() throws {
        let result = validation(
            collecting(
                """
                  - { table: shop.newsletter_log, via: customer_ref, delete: true }
                  - { table: shop.wishlist_item, delete: true }
                  - { table: shop.order_line, through: [shop.order], anonymize: { qty: set(0) } }
                  - { table: shop.customer, anonymize: { email: fake_email } }
                """))
        #expect(result.errors.isEmpty, "\(result.errors)")
        let guards = try #require(result.resolved).guards
        #expect(guards.map(\.table) == [shop("newsletter_log"), shop("wishlist_item")])
        #expect(guards.map(\.columns) == [[ColumnName("customer_ref")], [ColumnName("customer_id")]])
        #expect(guards.map(\.subjectColumns) == [[ColumnName("id")], [ColumnName("id")]])
        #expect(guards.map(\.keyIsLinked) == [true, true])
        #expect(guards.map(\.dataPoint) == [0, 1])

        // A table that links twice (opened_by, closed_by) gets a guard per link.
        let twice = validation(
            collecting(
                """
                  - { table: shop.ticket, via: opened_by, delete: true }
                  - { table: shop.ticket, via: closed_by, anonymize: { closed_by: null } }
                """), against: Fixtures.edgeCases)
        #expect(twice.errors.isEmpty, "\(twice.errors)")
        #expect(
            try #require(twice.resolved).guards.map(\.columns) == [
                [ColumnName("opened_by")], [ColumnName("closed_by")],
            ])
        let plan = try #require(result.resolved).render()
        #expect(
            plan.contains(
                "collect: with consent only: a trigger once the policy is active refuses rows of subjects without consent in force in shop.newsletter_log (customer_ref), shop.wishlist_item (customer_id)"
            ), "\(plan)")
    }

    @Test(
        "without legal_basis: consent the policy is refused at collect",
        arguments: [("", "no legal_basis"), ("legal_basis: contract", "legal_basis: contract")])
    func needsConsentBasis(lines: String, stated: String) throws {
        let yaml = collecting("  - { table: shop.wishlist_item, delete: true }", lines: lines)
            .replacingOccurrences(
                of: "expires: { consent_revoked: 30 days, consent: gallra }",
                with: "expires: { inactive_for: 1 year, activity: last_seen_at }")
        let result = validation(yaml)
        #expect(result.resolved == nil)
        #expect(
            result.errors.map(\.message) == [
                "collect: with_consent lets the shop write a subject's data only while consent is in force, which gallra records only under a policy with legal_basis: consent, and this policy states \(stated); add legal_basis: consent, or remove collect"
            ])
        #expect(result.errors.first?.path == "collect")
    }

    @Test("a subject table named without its schema is refused: consent is recorded under the qualified name")
    func unqualifiedSubject() throws {
        let catalog = Catalog(tables: Fixtures.demoTables, searchPath: ["shop"], role: "gallra")
        let result = validation(
            collecting("  - { table: wishlist_item, delete: true }", table: "customer"), against: catalog)
        #expect(result.resolved == nil)
        #expect(
            result.errors.map(\.message).contains(
                "collect: with_consent checks consent recorded for the subject table by its schema-qualified name, and subject.table customer has no schema; write it as shop.customer"
            ), "\(result.errors)")
    }

    @Test("a policy whose data has no table linking to the subject directly guards nothing, and is refused")
    func nothingToGuard() throws {
        let result = validation(
            collecting(
                """
                  - { table: shop.order_line, through: [shop.order], anonymize: { qty: set(0) } }
                  - { table: shop.customer, anonymize: { email: fake_email } }
                """))
        #expect(result.resolved == nil)
        #expect(
            result.errors.map(\.message) == [
                "collect: with_consent guards the data-point tables that link to the subject directly, and no entry of data does (the subject row itself and tables reached through others are not guarded); add the table that holds the collected data, or remove collect"
            ])
    }

    @Test("a role without TRIGGER on a guarded table is told which GRANT it needs")
    func triggerPrivilege() throws {
        var tables = Fixtures.demoTables
        let index = try #require(tables.firstIndex { $0.name == shop("wishlist_item") })
        tables[index].privileges = [.select, .update, .delete]
        let result = validation(
            collecting("  - { table: shop.wishlist_item, delete: true }"),
            against: Catalog(tables: tables, searchPath: ["public"], role: "gallra"))
        #expect(result.resolved == nil)
        #expect(
            result.errors.map(\.message) == [
                "role gallra lacks TRIGGER on shop.wishlist_item, needed for data[0]; run: GRANT TRIGGER ON shop.wishlist_item TO gallra;"
            ])
        // collect: always needs no such right.
        let always = validation(
            collecting("  - { table: shop.wishlist_item, delete: true }").replacingOccurrences(
                of: "collect: with_consent", with: "collect: always"),
            against: Catalog(tables: tables, searchPath: ["public"], role: "gallra"))
        #expect(always.errors.isEmpty, "\(always.errors)")
    }
}
