import Foundation
import GallraPolicy
import Testing

/// A policy on the demo shop's customers that expires them by gallra's consent registry, with `basis` lines after
/// its name.
private func registryPolicy(_ basis: String) -> String {
    """
    policy: newsletter
    \(basis)
    subject: { table: shop.customer, key: id }
    expires: { consent_revoked: 30 days, consent: gallra }
    data:
      - { table: shop.customer, anonymize: { email: fake_email } }
    """
}

@Suite("Validator: consent from gallra's registry")
struct ValidatorConsentRegistryTests {
    @Test("consent: gallra is valid under legal_basis: consent, without gallra's schema in the catalog")
    func validUnderConsent() throws {
        // Fixtures.demoShop holds no table of gallra's: the engine migrates the registry before any run.
        let result = validation(registryPolicy("legal_basis: consent"))
        #expect(result.errors.isEmpty, "\(result.errors)")
        let rule = try #require(result.resolved).rule
        #expect(rule.kind == .consentRevoked)
        #expect(rule.period == (try RetentionPeriod(parsing: "30 days")))
        #expect(rule.table == QualifiedName(schema: "gallra", name: "consent_event"))
        #expect(rule.column == ColumnName("recorded_at"))
        #expect(rule.path.isEmpty)
        #expect(rule.index == "consent_event_one_history")
    }

    @Test(
        "consent: gallra without legal_basis: consent is refused at the consent key",
        arguments: [
            ("", "no legal_basis"),
            ("legal_basis: contract", "legal_basis: contract"),
            ("legal_basis: legitimate_interests", "legal_basis: legitimate_interests"),
        ])
    func refusedWithoutConsent(basis: String, stated: String) throws {
        let result = validation(registryPolicy(basis))
        #expect(result.resolved == nil)
        let error = try #require(result.errors.first)
        #expect(result.errors.count == 1)
        #expect(
            error.message
                == "consent: gallra reads gallra's consent registry, which records consent only under a policy with legal_basis: consent, and this policy states \(stated); add legal_basis: consent to the policy, or name your own consent table: consent: { table: TABLE, revoked_at: COLUMN }"
        )
        #expect(error.path == "expires.consent")
        #expect(error.location == SourceLocation(file: "p.yaml", line: 4, column: 47))
    }
}
