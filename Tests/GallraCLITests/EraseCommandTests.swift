import Foundation
import Testing

/// `gallra erase` and `gallra requests` on the demo shop, with its on-request policy
/// (`config/policies/erasure-requests.yaml`).
@Suite("gallra erase and gallra requests")
struct EraseCommandTests {
    /// A customer with orders and no legal hold, the first of them after `after`.
    static let customerSQL = """
        SELECT min(c.id) FROM shop.customer AS c
        WHERE NOT c.legal_hold AND EXISTS (SELECT FROM shop."order" AS o WHERE o.customer_id = c.id)
        """

    @Test func anErasurePrintsItsCountsAndLeavesOnlyTheDigestInTheQueue() async throws {
        try await DemoShop.with(customers: 200) { shop in
            let customer = try await shop.psql(Self.customerSQL)
            let orders = try await shop.psql("SELECT count(*) FROM shop.\"order\" WHERE customer_id = \(customer)")

            // The dry run shows the rows and changes nothing.
            let before = try await shop.checksums()
            let dry = try await shop.gallra("erase", "--subject", "shop.customer:\(customer)", "--dry-run")
            #expect(dry.status == 0, "\(dry.stderr)")
            #expect(dry.stdout.contains("policy erasure-requests v1: due"), "\(dry.stdout)")
            // Columns: data point, table, would delete, would anonymize, retained.
            #expect(
                dry.stdout.replacing(#/ +/#, with: " ").contains("shop.order 0 \(orders) 0"), "\(dry.stdout)")
            let dryJSON = try jsonObject(
                try await shop.gallra(
                    "erase", "--subject", "shop.customer:\(customer)", "--dry-run", "--format", "json"))
            let steps = try #require((dryJSON["policies"] as? [[String: Any]])?.first?["steps"] as? [[String: Any]])
            #expect(steps.contains { $0["table"] as? String == "shop.customer" && $0["rows"] as? Int == 1 })
            #expect(try await shop.checksums() == before)

            let live = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(customer)", "--reason", "ticket 5521",
                environment: shop.keyEnvironment)
            #expect(live.status == 0, "\(live.stdout) \(live.stderr)")
            #expect(live.stdout.hasPrefix("erasure request 1 (shop.customer): done\nrun: "), "\(live.stdout)")
            #expect(live.stdout.contains("shop.customer            1        0           0"), "\(live.stdout)")
            #expect(live.stdout.contains("shop.order               0        \(orders)"), "\(live.stdout)")
            #expect(live.stdout.contains("subject digest: \(shop.digest(customer: Int(customer)!))"))
            #expect(try await shop.psql("SELECT count(*) FROM shop.customer WHERE id = \(customer)") == "0")
            #expect(
                try await shop.psql("SELECT count(*) FROM shop.\"order\" WHERE customer_id = \(customer)") == "0")
            // Decided rows hold the digest, never the key.
            #expect(
                try await shop.psql(
                    "SELECT subject_key IS NULL AND subject_digest = '\(shop.digest(customer: Int(customer)!))' FROM gallra.erasure_request"
                ) == "t")
            let show = try jsonObject(try await shop.gallra("requests", "show", "1", "--format", "json"))
            #expect(show["status"] as? String == "done")
            #expect(show["subject_key"] is NSNull)
            #expect(show["reason"] as? String == "ticket 5521")
            let counts = try #require(show["counts"] as? [[String: Any]])
            #expect(counts.contains { $0["table"] as? String == "shop.order" && $0["rows"] as? Int == Int(orders) })

            // The subject is gone: a second erasure is refused as not found (66), recorded with the digest only.
            let again = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(customer)", environment: shop.keyEnvironment)
            #expect(again.status == 66, "\(again.stdout) \(again.stderr)")
            #expect(again.stderr.contains("refused: no row of shop.customer has the requested key"))
            let list = try await shop.gallra("requests", "list", "--status", "refused")
            #expect(list.status == 0)
            #expect(list.stdout.contains("2   refused  shop.customer"), "\(list.stdout)")
            // Times to the second, so the columns line up whatever the microseconds.
            #expect(
                list.stdout.contains(
                    try Regex(
                        #"shop\.customer  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"#)),
                "\(list.stdout)")
            let listed = try await shop.gallra("requests", "list", "--format", "json")
            let entries = try #require(
                try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]], "\(listed.stdout)"
            )
            #expect(entries.count == 2)
            #expect(entries.allSatisfy { $0["subject_key"] is NSNull }, "\(listed.stdout)")
        }
    }

    @Test func heldExemptedAndUncoveredSubjectsAreRefusedWithTheirExitStatuses() async throws {
        try await DemoShop.with(customers: 200) { shop in
            let held = try await shop.psql(Self.customerSQL)
            let hold = try await shop.psql(
                """
                INSERT INTO gallra.hold (subject_table, subject_key, reason, placed_by)
                VALUES ('shop.customer', '\(held)', 'case 2026-17', 'legal') RETURNING id
                """)
            let dry = try await shop.gallra("erase", "--subject", "shop.customer:\(held)", "--dry-run")
            #expect(dry.status == 75, "\(dry.stdout) \(dry.stderr)")
            #expect(dry.stdout.contains("would be refused: legal hold in force: hold \(hold) (case 2026-17)"))
            let dryJSON = try jsonObject(
                try await shop.gallra("erase", "--subject", "shop.customer:\(held)", "--dry-run", "--format", "json"))
            #expect(dryJSON["refusal_kind"] as? String == "held")
            let live = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(held)", environment: shop.keyEnvironment)
            #expect(live.status == 75, "\(live.stdout) \(live.stderr)")
            #expect(live.stderr.contains("legal hold in force: hold \(hold) (case 2026-17)"), "\(live.stderr)")
            let liveJSON = try jsonObject(
                try await shop.gallra(
                    "erase", "--subject", "shop.customer:\(held)", "--format", "json", environment: shop.keyEnvironment)
            )
            #expect(liveJSON["status"] as? String == "refused")
            #expect(liveJSON["refusal_kind"] as? String == "held")
            #expect(liveJSON["run"] is NSNull)
            #expect(liveJSON["subject_digest"] as? String == shop.digest(customer: Int(held)!))
            #expect(try await shop.psql("SELECT count(*) FROM shop.customer WHERE id = \(held)") == "1")

            let exempt = try await shop.psql(
                "UPDATE shop.customer SET legal_hold = true WHERE id = (SELECT max(id) FROM shop.customer) RETURNING id"
            )
            let exempted = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(exempt)", environment: shop.keyEnvironment)
            #expect(exempted.status == 75, "\(exempted.stdout) \(exempted.stderr)")
            #expect(
                exempted.stderr.contains(
                    "exemption of policy erasure-requests keeps the subject: except[0] (legal_hold is true)"),
                "\(exempted.stderr)")

            let employee = try await shop.psql("SELECT min(id) FROM shop.employee")
            let uncovered = try await shop.gallra(
                "erase", "--subject", "shop.employee:\(employee)", environment: shop.keyEnvironment)
            #expect(uncovered.status == 78, "\(uncovered.stdout) \(uncovered.stderr)")
            #expect(uncovered.stderr.contains("no active on-request policy covers shop.employee"))
            // A table no policy names at all is refused by gallra.request_erasure itself (GC002): nothing is recorded.
            let requests = try await shop.psql("SELECT count(*) FROM gallra.erasure_request")
            let unknownTable = try await shop.gallra(
                "erase", "--subject", "shop.store:1", environment: shop.keyEnvironment)
            #expect(unknownTable.status == 78, "\(unknownTable.stderr)")
            #expect(
                unknownTable.stderr.hasPrefix("gallra: no policy has its subjects in shop.store"),
                "\(unknownTable.stderr)")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.erasure_request") == requests)

            let missing = try await shop.gallra(
                "erase", "--subject", "shop.customer:email=nobody@example.invalid", "--dry-run")
            #expect(missing.status == 66, "\(missing.stderr)")
            let noKey = try await shop.gallra("erase", "--subject", "shop.customer:\(held)")
            #expect(noKey.status == 78, "\(noKey.stderr)")
            for arguments in [
                ["erase", "--subject", "shop.customer:1", "--after", "soon"],
                ["erase", "--subject", "shop.customer:1", "--dry-run", "--queue"],
                ["erase", "--subject", "customer:1"],
                ["erase", "--subject", "shop.customer:1", "--reason", " "],
                ["requests", "list", "--status", "open"],
            ] {
                let bad = try await run(Harness.gallraPath, arguments + ["--database", shop.conninfo])
                #expect(bad.status == 64, "\(arguments): \(bad.stderr)")
            }
        }
    }

    @Test func anUndoWindowIsHonouredAndACancellationInsideItKeepsTheSubject() async throws {
        try await DemoShop.with(customers: 200) { shop in
            let customer = try await shop.psql(Self.customerSQL)
            let queued = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(customer)", "--after", "24h", environment: shop.keyEnvironment)
            #expect(queued.status == 0, "\(queued.stderr)")
            #expect(queued.stdout.hasPrefix("erasure request 1 recorded for shop.customer; due "), "\(queued.stdout)")
            #expect(
                try await shop.psql(
                    "SELECT not_before > clock_timestamp() + interval '23 hours' FROM gallra.erasure_request") == "t")
            // Queued again inside the window: the same request, nothing changed.
            let early = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(customer)", "--after", "24h", environment: shop.keyEnvironment)
            #expect(early.status == 0)
            #expect(try await shop.psql("SELECT count(*) FROM gallra.erasure_request") == "1")
            #expect(try await shop.psql("SELECT count(*) FROM shop.customer WHERE id = \(customer)") == "1")

            let cancel = try await shop.gallra("requests", "cancel", "1")
            #expect(cancel.status == 0, "\(cancel.stderr)")
            #expect(try await shop.psql("SELECT status FROM gallra.erasure_request WHERE id = 1") == "cancelled")
            #expect(try await shop.gallra("requests", "cancel", "99").status == 66)
            #expect(try await shop.gallra("requests", "show", "99").status == 66)

            // A second request, due once its window is moved; processed by gallra erase of the same subject.
            let second = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(customer)", "--queue", environment: shop.keyEnvironment)
            #expect(second.status == 0, "\(second.stderr)")
            // (A second request for a pending subject is that request; the identity value it drew is skipped.)
            let id = try await shop.psql("SELECT max(id) FROM gallra.erasure_request WHERE status = 'pending'")
            let done = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(customer)", environment: shop.keyEnvironment)
            #expect(done.status == 0, "\(done.stdout) \(done.stderr)")
            #expect(done.stdout.hasPrefix("erasure request \(id) (shop.customer): done"), "\(done.stdout)")
            let decided = try await shop.gallra("requests", "cancel", id)
            #expect(decided.status == 65, "\(decided.stderr)")
            // The cancelled request lost its key at that processing too.
            #expect(
                try await shop.psql("SELECT count(*) FROM gallra.erasure_request WHERE subject_key IS NOT NULL") == "0")
        }
    }

    @Test func twoErasuresOfOneSubjectAtOnceAreProcessedOnce() async throws {
        try await DemoShop.with(customers: 200) { shop in
            let customer = try await shop.psql(Self.customerSQL)
            async let first = shop.gallra(
                "erase", "--subject", "shop.customer:\(customer)", environment: shop.keyEnvironment)
            async let second = shop.gallra(
                "erase", "--subject", "shop.customer:\(customer)", environment: shop.keyEnvironment)
            let results = try await [first, second]
            // One erases; the other either waits for it and reports it done, or comes after and finds no subject.
            #expect(results.contains { $0.status == 0 }, "\(results.map(\.stderr))")
            #expect(results.allSatisfy { $0.status == 0 || $0.status == 66 }, "\(results.map(\.stderr))")
            #expect(
                try await shop.psql(
                    "SELECT count(*) FROM gallra.audit_subject WHERE subject_digest = '\(shop.digest(customer: Int(customer)!))'"
                ) == "1")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.run WHERE trigger = 'erase'") == "1")
        }
    }

    /// `run --once` leaves on-request policies to their requests: a due request stays pending and its subject stays,
    /// until `gallra erase` (or the service) processes it and decides it with the run.
    @Test func runOnceLeavesOnRequestPoliciesToTheirRequests() async throws {
        try await DemoShop.with(customers: 200) { shop in
            // A customer no retention policy expires now.
            let customer = try await shop.psql(
                Self.customerSQL + " AND c.last_seen_at > now() - interval '300 days' AND NOT c.legal_hold")
            let id = try await shop.psql("SELECT gallra.request_erasure('shop.customer', '\(customer)')")
            let run = try await shop.gallra("run", "--once", "--allow-large", environment: shop.keyEnvironment)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stderr.contains("erasure-requests act(s) on erasure requests"), "\(run.stderr)")
            #expect(try await shop.psql("SELECT status FROM gallra.erasure_request WHERE id = \(id)") == "pending")
            #expect(try await shop.psql("SELECT count(*) FROM shop.customer WHERE id = \(customer)") == "1")
            let show = try await shop.gallra("requests", "show", id, "--format", "json")
            #expect(try jsonObject(show)["status"] as? String == "pending")
        }
    }

    /// Delete where possible, anonymize otherwise, in one erasure: the customer's own address, which nothing else
    /// uses, is deleted; the address its kept (anonymized) orders ship to stays, anonymized, since they reference it.
    @Test func anErasureDeletesWhereItCanAndAnonymizesARowAForeignKeyKeeps() async throws {
        try await DemoShop.with(customers: 200) { shop in
            let customer = try await shop.psql(Self.customerSQL)
            let own = try await shop.psql(
                """
                WITH a AS (INSERT INTO shop.address (street, postal_code, city) VALUES ('Own street 1', '11122', 'Solna')
                           RETURNING id)
                UPDATE shop.customer SET address_id = (SELECT id FROM a) WHERE id = \(customer) RETURNING address_id
                """)
            let shipping =
                try await shop.psql(
                    """
                    WITH a AS (INSERT INTO shop.address (street, postal_code, city) VALUES ('Ship street 2', '11133', 'Solna')
                               RETURNING id)
                    UPDATE shop."order" SET shipping_address_id = (SELECT id FROM a) WHERE customer_id = \(customer)
                    RETURNING shipping_address_id
                    """
                ).split(separator: "\n").first.map(String.init) ?? ""
            let live = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(customer)", "--format", "json", environment: shop.keyEnvironment)
            #expect(live.status == 0, "\(live.stdout) \(live.stderr)")
            let counts = try #require(try jsonObject(live)["counts"] as? [[String: Any]], "\(live.stdout)")
            func rows(_ table: String, _ action: String) -> Int? {
                counts.first { $0["table"] as? String == table && $0["action"] as? String == action }?["rows"] as? Int
            }
            #expect(rows("shop.address", "delete") == 1, "\(live.stdout)")
            #expect(rows("shop.address", "anonymize") == 1, "\(live.stdout)")
            #expect(try await shop.psql("SELECT count(*) FROM shop.address WHERE id = \(own)") == "0")
            #expect(
                try await shop.psql("SELECT street <> 'Ship street 2' FROM shop.address WHERE id = \(shipping)") == "t")
            #expect(
                try await shop.psql(
                    "SELECT count(*) > 0 FROM shop.\"order\" WHERE shipping_address_id = \(shipping) AND customer_id IS NULL"
                )
                    == "t")
        }
    }
}
