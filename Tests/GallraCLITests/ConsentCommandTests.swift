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

    /// Customers of the demo shop who never gave newsletter consent in the shop's own table, so none was moved
    /// into the registry.
    static func withoutConsent(_ shop: DemoShop, count: Int) async throws -> [Int] {
        let ids = try await shop.psql(
            """
            SELECT id FROM shop.customer AS c
            WHERE NOT EXISTS (SELECT FROM shop.newsletter_consent AS n WHERE n.customer_id = c.id)
            ORDER BY id LIMIT \(count)
            """
        ).split(separator: "\n").compactMap { Int($0) }
        try #require(ids.count == count, "customers without consent: \(ids)")
        return ids
    }

    @Test func grantShowRevokeShow() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let ids = try await Self.withoutConsent(shop, count: 2)
            let customer = "shop.customer:\(ids[0])"
            let events = "SELECT count(*) FROM gallra.consent_event WHERE subject_key = '\(ids[0])'"
            let grant = try await shop.gallra(
                "consent", "grant", "--subject", customer, "--policy", Self.policy, "--source", "store",
                "--evidence", "ticket 5521", "--format", "json")
            #expect(grant.status == 0, "\(grant.stderr)")
            let granted = try jsonObject(grant)
            #expect(granted["recorded"] as? Bool == true)
            #expect(granted["in_force"] as? Bool == true)
            let grantID = try #require(granted["event_id"] as? Int)
            let grantedAt = try await shop.psql(
                """
                SELECT to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                FROM gallra.consent_event WHERE id = \(grantID)
                """)

            // Granting again while consent is in force records nothing, and says so.
            let again = try await shop.gallra(
                "consent", "grant", "--subject", customer, "--policy", Self.policy, "--source", "store")
            #expect(again.status == 0, "\(again.stderr)")
            #expect(
                again.stdout.hasPrefix(
                    "consent of \(customer) to \(Self.policy) is already in force since \(grantedAt)"))
            #expect(again.stdout.hasSuffix(", nothing recorded (event \(grantID))\n"), "\(again.stdout)")
            let againJSON = try jsonObject(
                try await shop.gallra(
                    "consent", "grant", "--subject", customer, "--policy", Self.policy, "--format", "json"))
            #expect(againJSON["recorded"] as? Bool == false)
            #expect(againJSON["in_force"] as? Bool == true)
            #expect(againJSON["event_id"] as? Int == grantID)
            #expect(againJSON["recorded_at"] as? String == granted["recorded_at"] as? String)
            #expect(try await shop.psql(events) == "1")

            let shown = try await shop.gallra(
                "consent", "show", "--subject", customer, "--policy", Self.policy)
            #expect(shown.status == 0, "\(shown.stderr)")
            #expect(shown.stdout.contains("\(Self.policy): consent in force since \(grantedAt)"))
            #expect(shown.stdout.contains("granted  \(Self.policy)"))
            #expect(shown.stdout.contains("store"))

            let json = try jsonObject(
                try await shop.gallra(
                    "consent", "show", "--subject", customer, "--policy", Self.policy, "--format", "json"))
            #expect(json["subject"] as? String == customer)
            let policies = try #require(json["policies"] as? [[String: Any]])
            #expect(policies.count == 1)
            #expect(policies.first?["in_force"] as? Bool == true)
            #expect(policies.first?["granted_at"] as? String == granted["recorded_at"] as? String)
            let history = try #require(json["history"] as? [[String: Any]])
            #expect(history.count == 1)
            #expect(history.first?["event"] as? String == "granted")
            #expect(history.first?["policy"] as? String == Self.policy)
            #expect(history.first?["policy_version"] as? Int == 1)
            #expect(history.first?["source"] as? String == "store")
            #expect(history.first?["evidence"] as? String == "ticket 5521")
            #expect((history.first?["recorded_at"] as? String)?.hasSuffix("Z") == true)

            let revoke = try await shop.gallra(
                "consent", "revoke", "--subject", customer, "--policy", Self.policy, "--source", "phone",
                "--format", "json")
            #expect(revoke.status == 0, "\(revoke.stderr)")
            let revoked = try jsonObject(revoke)
            #expect(revoked["event"] as? String == "revoked")
            #expect(revoked["recorded"] as? Bool == true)
            let revokeID = try #require(revoked["event_id"] as? Int)
            #expect(revoked["in_force"] as? Bool == false)
            let revokedAt = try await shop.psql(
                """
                SELECT to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                FROM gallra.consent_event WHERE id = \(revokeID)
                """)

            // Revoking when no consent is in force records nothing, and says so.
            let revokeAgain = try await shop.gallra(
                "consent", "revoke", "--subject", customer, "--policy", Self.policy, "--source", "phone")
            #expect(revokeAgain.status == 0, "\(revokeAgain.stderr)")
            #expect(
                revokeAgain.stdout.hasPrefix(
                    "consent of \(customer) to \(Self.policy) is not in force: withdrawn \(revokedAt)"))
            #expect(revokeAgain.stdout.hasSuffix(", nothing recorded (event \(revokeID))\n"), "\(revokeAgain.stdout)")
            let revokeAgainJSON = try jsonObject(
                try await shop.gallra(
                    "consent", "revoke", "--subject", customer, "--policy", Self.policy, "--format", "json"))
            #expect(revokeAgainJSON["recorded"] as? Bool == false)
            #expect(revokeAgainJSON["event_id"] as? Int == revokeID)
            #expect(try await shop.psql(events) == "2")

            let never = try await shop.gallra(
                "consent", "revoke", "--subject", "shop.customer:\(ids[1])", "--policy", Self.policy)
            #expect(never.status == 0, "\(never.stderr)")
            #expect(
                never.stdout == "shop.customer:\(ids[1]) never gave consent to \(Self.policy): nothing to withdraw\n")

            let after = try await shop.gallra("consent", "show", "--subject", customer)
            #expect(after.status == 0, "\(after.stderr)")
            #expect(after.stdout.contains("\(Self.policy): consent NOT in force\n"))
            #expect(after.stdout.contains("revoked  \(Self.policy)"))
            let afterJSON = try jsonObject(
                try await shop.gallra(
                    "consent", "show", "--subject", customer, "--policy", Self.policy, "--format", "json"))
            let afterPolicies = try #require(afterJSON["policies"] as? [[String: Any]])
            #expect(afterPolicies.first?["in_force"] as? Bool == false)
            #expect(afterPolicies.first?["granted_at"] == nil)
            let history2 = try #require(afterJSON["history"] as? [[String: Any]])
            #expect(history2.compactMap { $0["event"] as? String } == ["granted", "revoked"])
            #expect(history2.last?["source"] as? String == "phone")
        }
    }

    /// Consent under an earlier version of the policy stays in force; granting again records the new terms.
    @Test func aGrantOfAnEarlierVersionStaysInForceAndANewGrantIsRecorded() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let customer = "shop.customer:\(try await Self.withoutConsent(shop, count: 1)[0])"
            let first = try await shop.gallra(
                "consent", "grant", "--subject", customer, "--policy", Self.policy, "--format", "json")
            #expect(try jsonObject(first)["recorded"] as? Bool == true)
            try await shop.applyEdited(
                Self.policy, [("purpose: Sending the newsletter", "purpose: Sending the monthly newsletter")])
            let shown = try jsonObject(
                try await shop.gallra(
                    "consent", "show", "--subject", customer, "--policy", Self.policy, "--format", "json"))
            #expect((shown["policies"] as? [[String: Any]])?.first?["in_force"] as? Bool == true)

            let second = try await shop.gallra("consent", "grant", "--subject", customer, "--policy", Self.policy)
            #expect(second.status == 0, "\(second.stderr)")
            #expect(second.stdout.hasPrefix("consent of \(customer) to \(Self.policy) is in force (event "))
            #expect(
                try await shop.psql(
                    """
                    SELECT string_agg(event || ' v' || policy_version, ', ' ORDER BY ordinal)
                    FROM gallra.consent_event WHERE subject_key = '\(customer.split(separator: ":")[1])'
                    """) == "granted v1, granted v2")
        }
    }

    /// The shop's consent table, moved into the registry by config/demo/consent.sql: what `show` says of a
    /// customer is what the shop's table said, at the times it said it.
    @Test func showTellsTheHistoryMovedFromTheShopsTable() async throws {
        try await DemoShop.with(customers: 40) { shop in
            for revoked in [false, true] {
                let row = try await shop.psql(
                    """
                    SELECT customer_id || '|' || to_char(given_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '|'
                           || coalesce(to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), '')
                    FROM shop.newsletter_consent WHERE (revoked_at IS NOT NULL) = \(revoked)
                    ORDER BY customer_id LIMIT 1
                    """
                ).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                try #require(row.count == 3, "a consent with revoked = \(revoked): \(row)")
                let shown = try await shop.gallra("consent", "show", "--subject", "shop.customer:\(row[0])")
                #expect(shown.status == 0, "\(shown.stderr)")
                // The in-force line, a blank line, the table's header, its rows.
                let lines = Array(
                    shown.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).dropLast())
                if revoked {
                    #expect(lines.first == "\(Self.policy): consent NOT in force")
                    #expect(lines.count == 5, "\(shown.stdout)")
                    #expect(
                        lines.last?.hasPrefix("revoked  \(Self.policy)  1        \(row[2])") == true, "\(shown.stdout)")
                } else {
                    #expect(lines.first?.hasPrefix("\(Self.policy): consent in force since \(row[1])") == true)
                    #expect(lines.count == 4, "\(shown.stdout)")
                }
                #expect(lines.dropFirst(3).first?.hasPrefix("granted  \(Self.policy)  1        \(row[1])") == true)
                #expect(lines.dropFirst(3).first?.hasSuffix(" web") == true, "\(shown.stdout)")
            }
        }
    }

    /// config/demo/consent.sql needs the policy stored, and records nothing new when run again.
    @Test func theDemoImportNeedsThePolicyAndRunsAgainWithoutRecording() async throws {
        try await DemoShop.with(customers: 20, policies: false) { shop in
            let script = "\(shop.root)/config/demo/consent.sql"
            let psql = ["/usr/bin/psql", shop.conninfo, "-qX", "-v", "ON_ERROR_STOP=1", "-f", script]
            let early = try await run(psql[0], Array(psql.dropFirst()))
            #expect(early.status == 3, "psql stops at the error: \(early.stderr)")
            #expect(early.stderr.contains("no policy revoked-newsletter-consent with legal_basis: consent is stored"))
            #expect(early.stderr.contains("gallra policy apply config/policies first"))
            #expect(try await shop.psql("SELECT count(*) FROM gallra.consent_event") == "0")

            try await shop.apply("\(shop.root)/config/policies")
            let first = try await run(psql[0], Array(psql.dropFirst()))
            #expect(first.status == 0, "\(first.stderr)")
            let expected = try await shop.psql(
                "SELECT count(*) + count(revoked_at) FROM shop.newsletter_consent WHERE channel = 'email'")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.consent_event") == expected)
            let checksum = "SELECT md5(string_agg(e::text, ',' ORDER BY e.id)) FROM gallra.consent_event AS e"
            let before = try await shop.psql(checksum)
            let again = try await run(psql[0], Array(psql.dropFirst()))
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try await shop.psql(checksum) == before)
        }
    }

    @Test func listCountsInForceAndPerMonth() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let ids = try await Self.withoutConsent(shop, count: 3)
            for id in ids {
                let grant = try await shop.gallra(
                    "consent", "grant", "--subject", "shop.customer:\(id)", "--policy", Self.policy)
                #expect(grant.status == 0, "\(grant.stderr)")
            }
            let revoke = try await shop.gallra(
                "consent", "revoke", "--subject", "shop.customer:\(ids[1])", "--policy", Self.policy)
            #expect(revoke.status == 0, "\(revoke.stderr)")

            // By hand: the consents of the shop's table moved into the registry, and the three grants and one
            // revocation just made.
            let inForce = try await shop.psql(
                "SELECT count(*) + 2 FROM shop.newsletter_consent WHERE revoked_at IS NULL")
            let months = try await shop.psql(
                """
                SELECT string_agg(month || ' ' || granted || ' ' || revoked, ', ' ORDER BY month) FROM (
                    SELECT month, count(*) FILTER (WHERE event = 'g') AS granted,
                           count(*) FILTER (WHERE event = 'r') AS revoked
                    FROM (SELECT to_char(given_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, 'g' AS event
                          FROM shop.newsletter_consent
                          UNION ALL
                          SELECT to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM'), 'r'
                          FROM shop.newsletter_consent WHERE revoked_at IS NOT NULL
                          UNION ALL
                          SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM'), event
                          FROM (VALUES ('g'), ('g'), ('g'), ('r')) AS made (event)) AS events
                    GROUP BY month) AS per_month
                """)

            let text = try await shop.gallra("consent", "list", "--policy", Self.policy)
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.stdout.hasPrefix("\(Self.policy): \(inForce) customers with consent in force\n"))

            let json = try jsonObject(
                try await shop.gallra("consent", "list", "--policy", Self.policy, "--format", "json"))
            #expect(json["policy"] as? String == Self.policy)
            #expect("\(json["in_force"] as? Int ?? -1)" == inForce)
            let listed = try #require(json["months"] as? [[String: Any]])
            #expect(
                listed.map {
                    "\($0["month"] as? String ?? "?") \($0["granted"] as? Int ?? -1) \($0["revoked"] as? Int ?? -1)"
                }
                .joined(separator: ", ") == months)

            let unknown = try await shop.gallra("consent", "list", "--policy", "no-such-policy")
            #expect(unknown.status == 65)
            #expect(unknown.stderr.contains("no policy named no-such-policy is stored"))
        }
    }

    /// A subject that does not exist is refused before the registry is called (SubjectCLITests).
    @Test func refusalsExit65WithTheServersMessageAndNeverTheKey() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let before = try await shop.psql("SELECT count(*) FROM gallra.consent_event")
            let cases: [(subject: String, policy: String, message: String)] = [
                ("shop.customer:5", "no-such-policy", "no policy named no-such-policy is stored"),
                (
                    "shop.employee:5", Self.policy,
                    "policy \(Self.policy)'s subjects are in shop.customer, not shop.employee"
                ),
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
            #expect(try await shop.psql("SELECT count(*) FROM gallra.consent_event") == before)
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
