import Foundation
import Testing

/// `gallra hold` against the demo shop: a customer due under inactive-customers, held, counted, released.
@Suite("gallra hold")
struct HoldCommandTests {
    @Test func helpIsWrittenForAnOperator() async throws {
        let result = try await gallra("hold", "--help")
        #expect(result.status == 0)
        #expect(result.stdout.contains("gallra hold add --subject shop.customer:1234 --reason"))
        for command in ["add", "list", "release"] {
            let help = try await gallra("hold", command, "--help")
            #expect(help.stdout.contains("USAGE: gallra hold \(command)"), "\(help.stdout)")
        }
        #expect(try await gallra("hold", "add", "--help").stdout.contains("--until"))
    }

    /// A customer inactive-customers finds due at the demo instant (not under the shop's own legal_hold column).
    static func dueCustomer(_ shop: DemoShop) async throws -> String {
        try await shop.psql(
            """
            SELECT id FROM shop.customer
            WHERE last_seen_at < \(DemoShop.asOfSQL) - interval '1 year' AND NOT legal_hold ORDER BY id LIMIT 1
            """)
    }

    @Test func placeCountListReleaseAndTheAuditTrail() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let id = try await Self.dueCustomer(shop)
            let subject = "shop.customer:\(id)"
            let add = try await shop.gallra(
                "hold", "add", "--subject", subject, "--reason", "case 2026-114", "--format", "json",
                environment: shop.keyEnvironment)
            #expect(add.status == 0, "\(add.stderr)")
            let placed = try jsonObject(add)
            let hold = try #require(placed["id"] as? Int)
            #expect(placed["state"] as? String == "in_force")
            #expect(placed["subject_digest"] as? String == shop.digest(customer: Int(id) ?? 0))
            #expect(placed["until"] is NSNull)

            let list = try await shop.gallra("hold", "list")
            #expect(list.status == 0, "\(list.stderr)")
            #expect(list.stdout.contains("case 2026-114"))
            #expect(list.stdout.contains(subject))
            #expect(list.stdout.contains("(every policy)"))

            // The plan counts the customer as held, not expiring; explain says which hold.
            let before = try await shop.psql("SELECT count(*) FROM gallra.hold")
            let plan = try await shop.gallra(
                "plan", "--policy", "inactive-customers", "--as-of", DemoShop.asOf, "--format", "json")
            #expect(plan.status == 0, "\(plan.stderr)")
            let report = try #require(try jsonObject(plan)["report"] as? [String: Any])
            let planned = try #require((report["policies"] as? [[String: Any]])?.first)
            #expect(planned["held"] as? Int == 1)
            let text = try await shop.gallra("plan", "--policy", "inactive-customers", "--as-of", DemoShop.asOf)
            #expect(text.stdout.contains("exempted, 1 held, "), "\(text.stdout)")
            let explain = try await shop.gallra("explain", "--subject", subject, "--as-of", DemoShop.asOf)
            #expect(explain.status == 0, "\(explain.stderr)")
            #expect(explain.stdout.contains("policy inactive-customers v1 (active): held"), "\(explain.stdout)")
            #expect(explain.stdout.contains("  held: hold \(hold) \"case 2026-114\", until released"))

            let release = try await shop.gallra("hold", "release", "\(hold)", "--reason", "case closed")
            #expect(release.status == 0, "\(release.stderr)")
            #expect(release.stdout == "hold \(hold) on \(subject) released\n")
            let twice = try await shop.gallra("hold", "release", "\(hold)", "--reason", "case closed")
            #expect(twice.status == 65)
            #expect(twice.stderr.contains("hold \(hold) was released already"), "\(twice.stderr)")
            let unknown = try await shop.gallra("hold", "release", "4242", "--reason", "x")
            #expect(unknown.status == 66)
            #expect(unknown.stderr.contains("no hold has id 4242"))
            #expect(try await shop.gallra("hold", "list").stdout == "no hold is in force\n")
            let all = try await shop.gallra("hold", "list", "--all", "--subject", subject, "--format", "json")
            #expect(all.stdout.contains(#""state" : "released""#), "\(all.stdout)")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.hold") == before)

            let verify = try await shop.gallra("audit", "verify")
            #expect(verify.status == 0, "\(verify.stderr)")
            #expect(verify.stdout.contains("2 event records (holds, corrections)"), "\(verify.stdout)")
            let lookup = try await shop.gallra(
                "audit", "lookup", "--subject", subject, environment: shop.keyEnvironment)
            #expect(lookup.status == 0, "\(lookup.stderr)")
            #expect(lookup.stdout.contains("holds and corrections:"))
            #expect(lookup.stdout.contains("hold_placed"))
            #expect(lookup.stdout.contains("hold_released"))
        }
    }

    @Test func badInputSaysWhatIsWrongAndWritesNothing() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let id = try await Self.dueCustomer(shop)
            let subject = "shop.customer:\(id)"
            let cases: [(arguments: [String], status: Int32, message: String)] = [
                (
                    ["--subject", "shop.customer:999999", "--reason", "x"], 66,
                    "no subject in shop.customer has that key"
                ),
                (["--subject", subject, "--reason", ""], 64, "--reason is empty"),
                (["--subject", subject, "--reason", "x", "--until", "2020-01-01"], 65, "is not in the future"),
                (["--subject", subject, "--reason", "x", "--until", "soon"], 64, "not a date or timestamp"),
                (
                    ["--subject", subject, "--reason", "x", "--policy", "nonesuch"], 65,
                    "no stored policy is named nonesuch"
                ),
            ]
            for (arguments, status, message) in cases {
                let result = try await run(
                    Harness.gallraPath, ["hold", "add"] + arguments + ["--database", shop.conninfo], environment: [:])
                #expect(result.status == status, "\(arguments): \(result.stderr)")
                #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
                #expect(!result.stderr.contains("999999"))
            }
            #expect(try await shop.psql("SELECT count(*) FROM gallra.hold") == "0")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_event") == "0")
        }
    }
}
