import Foundation
import Testing

/// `gallra consent` against the demo shop, whose revoked-newsletter-consent policy says `legal_basis: consent`.
@Suite("gallra consent")
struct ConsentCommandTests {
    static let policy = "revoked-newsletter-consent"

    @Test func helpIsWrittenForCustomerService() async throws {
        let result = try await gallra("consent", "--help")
        #expect(result.status == 0)
        #expect(result.stdout.contains("gallra consent grant --subject shop.customer:1234"))
        for command in ["grant", "revoke", "show", "list"] {
            let help = try await gallra("consent", command, "--help")
            #expect(help.stdout.contains("USAGE: gallra consent \(command)"), "\(help.stdout)")
            #expect(help.stdout.contains("--format"))
        }
    }

    @Test func grantShowRevokeShow() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let grant = try await shop.gallra(
                "consent", "grant", "--subject", "shop.customer:7", "--policy", Self.policy, "--source", "store",
                "--evidence", "ticket 5521")
            #expect(grant.status == 0, "\(grant.stderr)")
            #expect(grant.stdout.hasPrefix("consent of shop.customer:7 to \(Self.policy) is in force (event "))

            // Granting again while consent is in force records nothing.
            let again = try await shop.gallra(
                "consent", "grant", "--subject", "shop.customer:7", "--policy", Self.policy, "--format", "json")
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try jsonObject(again)["in_force"] as? Bool == true)

            let shown = try await shop.gallra(
                "consent", "show", "--subject", "shop.customer:7", "--policy", Self.policy)
            #expect(shown.status == 0, "\(shown.stderr)")
            #expect(shown.stdout.contains("\(Self.policy): consent in force\n"))
            #expect(shown.stdout.contains("granted  \(Self.policy)"))
            #expect(shown.stdout.contains("store"))

            let json = try jsonObject(
                try await shop.gallra(
                    "consent", "show", "--subject", "shop.customer:7", "--policy", Self.policy, "--format", "json"))
            #expect(json["subject"] as? String == "shop.customer:7")
            let policies = try #require(json["policies"] as? [[String: Any]])
            #expect(policies.count == 1)
            #expect(policies.first?["in_force"] as? Bool == true)
            let history = try #require(json["history"] as? [[String: Any]])
            #expect(history.count == 1)
            #expect(history.first?["event"] as? String == "granted")
            #expect(history.first?["policy"] as? String == Self.policy)
            #expect(history.first?["policy_version"] as? Int == 1)
            #expect(history.first?["source"] as? String == "store")
            #expect(history.first?["evidence"] as? String == "ticket 5521")
            #expect((history.first?["recorded_at"] as? String)?.hasSuffix("Z") == true)

            let revoke = try await shop.gallra(
                "consent", "revoke", "--subject", "shop.customer:7", "--policy", Self.policy, "--source", "phone",
                "--format", "json")
            #expect(revoke.status == 0, "\(revoke.stderr)")
            let revoked = try jsonObject(revoke)
            #expect(revoked["event"] as? String == "revoked")
            #expect(revoked["event_id"] as? Int != nil)
            #expect(revoked["in_force"] as? Bool == false)

            let never = try await shop.gallra(
                "consent", "revoke", "--subject", "shop.customer:8", "--policy", Self.policy)
            #expect(never.status == 0, "\(never.stderr)")
            #expect(never.stdout == "shop.customer:8 never gave consent to \(Self.policy): nothing to withdraw\n")

            let after = try await shop.gallra("consent", "show", "--subject", "shop.customer:7")
            #expect(after.status == 0, "\(after.stderr)")
            #expect(after.stdout.contains("\(Self.policy): consent NOT in force\n"))
            #expect(after.stdout.contains("revoked  \(Self.policy)"))
            let afterJSON = try jsonObject(
                try await shop.gallra(
                    "consent", "show", "--subject", "shop.customer:7", "--policy", Self.policy, "--format", "json"))
            #expect((afterJSON["policies"] as? [[String: Any]])?.first?["in_force"] as? Bool == false)
            let events = try #require(afterJSON["history"] as? [[String: Any]])
            #expect(events.compactMap { $0["event"] as? String } == ["granted", "revoked"])
            #expect(events.last?["source"] as? String == "phone")
        }
    }

    @Test func listCountsInForceAndPerMonth() async throws {
        try await DemoShop.with(customers: 20) { shop in
            for id in [1, 2, 3] {
                let grant = try await shop.gallra(
                    "consent", "grant", "--subject", "shop.customer:\(id)", "--policy", Self.policy)
                #expect(grant.status == 0, "\(grant.stderr)")
            }
            let revoke = try await shop.gallra(
                "consent", "revoke", "--subject", "shop.customer:2", "--policy", Self.policy)
            #expect(revoke.status == 0, "\(revoke.stderr)")

            let text = try await shop.gallra("consent", "list", "--policy", Self.policy)
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.stdout.hasPrefix("\(Self.policy): 2 customers with consent in force\n"))

            let json = try jsonObject(
                try await shop.gallra("consent", "list", "--policy", Self.policy, "--format", "json"))
            #expect(json["policy"] as? String == Self.policy)
            #expect(json["in_force"] as? Int == 2)
            let months = try #require(json["months"] as? [[String: Any]])
            #expect(months.reduce(0) { $0 + ($1["granted"] as? Int ?? 0) } == 3)
            #expect(months.reduce(0) { $0 + ($1["revoked"] as? Int ?? 0) } == 1)
            #expect(months.allSatisfy { ($0["month"] as? String)?.count == 7 })

            let unknown = try await shop.gallra("consent", "list", "--policy", "no-such-policy")
            #expect(unknown.status == 65)
            #expect(unknown.stderr.contains("no policy named no-such-policy is stored"))
        }
    }

    @Test func refusalsExit65WithTheServersMessageAndNeverTheKey() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let cases: [(subject: String, policy: String, message: String)] = [
                ("shop.customer:5", "no-such-policy", "no policy named no-such-policy is stored"),
                (
                    "shop.employee:5", Self.policy,
                    "policy \(Self.policy)'s subjects are in shop.customer, not shop.employee"
                ),
                (
                    "shop.customer:987654", Self.policy,
                    "no subject of policy \(Self.policy) has that key in shop.customer"
                ),
                ("shop.customer:abc987654", Self.policy, "Record consent for a subject row that exists"),
                (
                    "shop.customer:5", "inactive-customers",
                    "policy inactive-customers's legal basis is contract, not consent"
                ),
            ]
            for refusal in cases {
                let result = try await shop.gallra(
                    "consent", "grant", "--subject", refusal.subject, "--policy", refusal.policy)
                #expect(result.status == 65, "\(refusal): \(result.stdout) \(result.stderr)")
                #expect(result.stderr.hasPrefix("gallra: "), "\(result.stderr)")
                #expect(result.stderr.contains(refusal.message), "\(refusal): \(result.stderr)")
                #expect(!result.stderr.contains("987654"), "the key must not be printed: \(result.stderr)")
                #expect(result.stdout.isEmpty)
            }
            let history = try await shop.psql("SELECT count(*) FROM gallra.consent_event")
            #expect(history == "0")
        }
    }

    @Test func aBadSubjectIsAUsageError() async throws {
        for subject in ["shop.customer", "customer:7", "shop.customer:"] {
            let result = try await gallra(
                "consent", "grant", "--subject", subject, "--policy", Self.policy, "--database", "dbname=unused")
            #expect(result.status == 64, "\(subject): \(result.stderr)")
            #expect(result.stderr.contains("--subject"), "\(result.stderr)")
        }
        let show = try await gallra("consent", "show", "--subject", "nocolon", "--database", "dbname=unused")
        #expect(show.status == 64)
    }

    @Test func aDatabaseNotMigratedSaysToMigrate() async throws {
        try await DemoShop.with(customers: 5, migrate: false, policies: false) { shop in
            let result = try await shop.gallra(
                "consent", "grant", "--subject", "shop.customer:1", "--policy", Self.policy)
            #expect(result.status == 78, "\(result.stderr)")
            #expect(result.stderr.contains("gallra migrate"))
        }
    }
}
