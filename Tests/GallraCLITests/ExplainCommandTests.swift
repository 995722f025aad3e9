import Foundation
import Testing

/// The per-table counts an audit record holds, or explain predicts: `table action` → rows.
private typealias TableCounts = [String: Int]

@Suite("gallra explain")
struct ExplainCommandTests {
    @Test func helpShowsAnExample() async throws {
        let result = try await gallra("explain", "--help")
        #expect(result.status == 0)
        #expect(result.stdout.contains("gallra explain --subject shop.customer:42"))
    }

    @Test func aSubjectWithoutColonIsAUsageError() async throws {
        let result = try await gallra("explain", "--subject", "shop.customer", "--database", "dbname=none")
        #expect(result.status == 64)
        #expect(result.stderr.contains("TABLE:KEY"))
    }

    @Test func explainsInWordsChangesNothingAndNamesWhatIsMissing() async throws {
        try await DemoShop.with(customers: 60) { shop in
            let held = "7"
            try await shop.psql("UPDATE shop.customer SET legal_hold = true WHERE id = \(held)")
            let before = try await shop.checksums()
            let text = try await shop.gallra("explain", "--subject", "shop.customer:\(held)", "--as-of", DemoShop.asOf)
            #expect(text.status == 0, "\(text.stderr)")
            #expect(
                text.stdout.contains(
                    "policy inactive-customers v1 (active): never while exempt: except[0] legal_hold is true"))
            #expect(text.stdout.contains("policy revoked-newsletter-consent v1 (draft)"))
            #expect(text.stdout.contains("history: not shown, no audit key"))
            // JSON: every key present, null when unknown.
            let json = try jsonObject(
                try await shop.gallra(
                    "explain", "--subject", "shop.customer:\(held)", "--as-of", DemoShop.asOf, "--format", "json"))
            #expect(json["history"] is NSNull && json["history_available"] as? Bool == false)
            #expect(json["as_of"] as? String == "2026-11-29T00:00:00.000Z")
            let policies = json["policies"] as? [[String: Any]] ?? []
            #expect(
                policies.map { $0["policy"] as? String }
                    == ["erasure-requests", "inactive-customers", "revoked-newsletter-consent"])
            #expect(policies.allSatisfy { $0["consent"] != nil && $0["expires_at"] != nil })
            #expect(try await shop.checksums() == before)

            let withKey = try await shop.gallra(
                "explain", "--subject", "shop.customer:\(held)", "--as-of", DemoShop.asOf,
                environment: shop.keyEnvironment)
            #expect(
                withKey.stdout.contains(
                    "history: no record in the audit trail (subject digest \(shop.digest(customer: Int(held) ?? 0)))"))

            // Found by what customer service knows: the same explanation as by the key.
            let email = try await shop.psql("SELECT email FROM shop.customer WHERE id = \(held)")
            let byEmail = try await shop.gallra(
                "explain", "--subject", "shop.customer:email=\(email)", "--as-of", DemoShop.asOf)
            #expect(byEmail.status == 0, "\(byEmail.stderr)")
            #expect(byEmail.stdout == text.stdout)
            let nobody = try await shop.gallra("explain", "--subject", "shop.customer:email=nobody@example.invalid")
            #expect(nobody.status == 66)
            #expect(!nobody.stderr.contains("nobody@example.invalid"), "\(nobody.stderr)")

            let missing = try await shop.gallra("explain", "--subject", "shop.customer:999999")
            #expect(missing.status == 66)
            #expect(missing.stderr.contains("shop.customer has no row with key 999999"))

            let uncovered = try await shop.gallra("explain", "--subject", "shop.store:1")
            #expect(uncovered.status == 65)
            #expect(uncovered.stderr.contains("no policy names shop.store as its subject table"))

            let unqualified = try await shop.gallra("explain", "--subject", "customer:1")
            #expect(unqualified.status == 64)
        }
    }

    /// On the demo shop, a sample of customers (due, exempt under a legal hold, not due yet, without an activity date,
    /// sharing an address): what explain says each one's standing and rows are, and what the live run at the same
    /// instant then records for it, agree subject by subject.
    @Test func agreesWithTheLiveRunThatFollows() async throws {
        try await DemoShop.with(customers: 400) { shop in
            let byKind = try await shop.psql(
                """
                SELECT k, string_agg(id::text, ' ' ORDER BY id) FROM (
                  SELECT c.id, k, row_number() OVER (PARTITION BY k ORDER BY c.id) AS n FROM shop.customer AS c,
                  LATERAL (VALUES
                    (CASE WHEN c.legal_hold THEN 'held'
                          WHEN c.last_seen_at IS NULL THEN 'undated'
                          WHEN c.last_seen_at < \(DemoShop.asOfSQL) - interval '1 year' THEN 'due'
                          ELSE 'recent' END),
                    (CASE WHEN EXISTS (SELECT FROM shop.customer AS o
                                       WHERE o.address_id = c.address_id AND o.id <> c.id) THEN 'shared' END)) AS v(k)
                  WHERE k IS NOT NULL) AS t
                WHERE n <= 8 GROUP BY k ORDER BY k
                """)
            var sample: Set<Int> = []
            var kinds: [String: [Int]] = [:]
            for line in byKind.split(separator: "\n") {
                let parts = line.split(separator: "|")
                let keys = parts[1].split(separator: " ").compactMap { Int($0) }
                kinds[String(parts[0])] = keys
                sample.formUnion(keys)
            }
            for kind in ["due", "held", "recent", "shared"] {
                try #require(!(kinds[kind] ?? []).isEmpty, "the demo shop has no \(kind) customer: \(byKind)")
            }

            var predicted: [Int: (due: Bool, counts: TableCounts)] = [:]
            var verdicts: [String: Int] = [:]
            for key in sample.sorted() {
                let result = try await shop.gallra(
                    "explain", "--subject", "shop.customer:\(key)", "--as-of", DemoShop.asOf, "--format", "json")
                try #require(result.status == 0, "explain \(key): \(result.stderr)")
                let document = try jsonObject(result)
                let policies = try #require(document["policies"] as? [[String: Any]])
                let policy = try #require(policies.first { $0["policy"] as? String == "inactive-customers" })
                let verdict = try #require(policy["verdict"] as? String)
                verdicts[verdict, default: 0] += 1
                var counts: TableCounts = [:]
                for step in try #require(policy["steps"] as? [[String: Any]]) {
                    let table = try #require(step["table"] as? String)
                    let action = step["action"] as? String == "delete" ? "deleted" : "anonymized"
                    if let rows = step["rows"] as? Int, rows > 0 { counts["\(table) \(action)", default: 0] += rows }
                    if let rows = step["retained"] as? Int, rows > 0 { counts["\(table) retained", default: 0] += rows }
                }
                if let events = policy["consent_events"] as? Int, events > 0 {
                    counts["gallra.consent_event deleted"] = events
                }
                predicted[key] = (verdict == "due", counts)
                if kinds["held"]?.contains(key) == true {
                    #expect(verdict == "exempt", "customer \(key) is on legal hold")
                    let exemptions = policy["exemptions"] as? [[String: Any]] ?? []
                    #expect(exemptions.first?["condition"] as? String == "legal_hold is true")
                }
                if kinds["recent"]?.contains(key) == true { #expect(verdict == "not_yet", "customer \(key)") }
                if kinds["undated"]?.contains(key) == true { #expect(verdict == "no_date", "customer \(key)") }
            }
            #expect(verdicts["due", default: 0] > 0 && verdicts["exempt", default: 0] > 0, "\(verdicts)")
            #expect(
                predicted.values.contains { $0.counts.keys.contains { $0.hasSuffix("retained") } },
                "no sampled subject retains a shared row")

            let run = try await shop.gallra("run", "--once", "--as-of", DemoShop.asOf, environment: shop.keyEnvironment)
            try #require(run.status == 0, "gallra run: \(run.stdout) \(run.stderr)")

            for (key, prediction) in predicted.sorted(by: { $0.key < $1.key }) {
                let records = try await shop.psql(
                    """
                    SELECT s.counts::text FROM gallra.audit_subject AS s
                    JOIN gallra.audit_block AS b ON b.sequence = s.block
                    WHERE s.subject_digest = '\(shop.digest(customer: key))' AND b.policy = 'inactive-customers'
                    """
                ).split(separator: "\n").filter { !$0.isEmpty }
                #expect(records.count == (prediction.due ? 1 : 0), "customer \(key): \(records.count) audit record(s)")
                guard let record = records.first else { continue }
                var recorded: TableCounts = [:]
                let counts = try #require(
                    try JSONSerialization.jsonObject(with: Data(record.utf8)) as? [[String: Any]])
                for count in counts {
                    let table = try #require(count["table"] as? String)
                    let action = try #require(count["action"] as? String)
                    let rows = try #require(count["rows"] as? Int)
                    if rows > 0 { recorded["\(table) \(action)"] = rows }
                }
                #expect(recorded == prediction.counts, "customer \(key)")
            }
        }
    }
}
