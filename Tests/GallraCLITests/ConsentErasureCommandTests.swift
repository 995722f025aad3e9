import Foundation
import Testing

@Suite("Consent events in gallra plan, gallra run and gallra audit lookup")
struct ConsentErasureCommandTests {
    @Test func thePlanCountsTheEventsTheRunRemovesAndTheAuditRecordsThem() async throws {
        try await DemoShop.with(customers: 200, consents: false) { shop in
            // Two customers inactive-customers expires, and one it keeps; consent recorded as the shop would.
            let due = try await shop.psql(
                "SELECT string_agg(id::text, ',') FROM (\(expiringCustomersSQL) ORDER BY id LIMIT 2) AS d"
            )
            .split(separator: ",").map(String.init)
            try #require(due.count == 2)
            let kept = try await shop.psql(
                "SELECT min(id) FROM shop.customer WHERE id NOT IN (\(expiringCustomersSQL))")
            let policy = "revoked-newsletter-consent"
            for (key, call) in [
                (due[0], "grant_consent"), (due[0], "revoke_consent"), (due[1], "grant_consent"),
                (kept, "grant_consent"),
            ] {
                try await shop.psql("SELECT gallra.\(call)('shop.customer', '\(key)', '\(policy)', 'web')")
            }

            let plan = try await shop.gallra("plan", "--as-of", DemoShop.asOf)
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(
                plan.stdout.contains("  3 consent events would be removed from gallra's registry"), "\(plan.stdout)")

            let live = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, "--format", "json", environment: shop.keyEnvironment)
            #expect(live.status == 0, "\(live.stdout) \(live.stderr)")
            let report = try #require(try jsonObject(live)["report"] as? [String: Any])
            let inactive = try #require(
                (report["policies"] as? [[String: Any]])?.first { $0["name"] as? String == "inactive-customers" })
            #expect(inactive["consent_events"] as? Int == 3)

            // Only the kept customer's event is left; the audit records count the others.
            #expect(
                try await shop.psql("SELECT string_agg(subject_key, ',') FROM gallra.consent_event") == kept)
            let lookup = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:\(due[0])", environment: shop.keyEnvironment)
            #expect(lookup.status == 0, "\(lookup.stderr)")
            #expect(lookup.stdout.contains("    gallra.consent_event deleted 2 rows"), "\(lookup.stdout)")
        }
    }
}
