import Foundation
import GallraEngine
import GallraPostgres
import Testing

/// `gallra audit lookup` against the demo shop after a live run: each kind of answer has its own words and exit
/// status.
@Suite("gallra audit lookup tells its answers apart")
struct LookupCommandTests {
    @Test func processedNotProcessedNoSuchSubjectUnknownTableAndAnotherKey() async throws {
        try await DemoShop.with(customers: 40) { shop in
            let due = try await shop.psql(
                """
                SELECT id FROM shop.customer
                WHERE last_seen_at < \(DemoShop.asOfSQL) - interval '1 year' AND NOT legal_hold ORDER BY id LIMIT 1
                """)
            let run = try await shop.gallra(
                "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf,
                environment: shop.keyEnvironment)
            #expect(run.status == 0, "\(run.stderr)")
            try #require(try await shop.psql("SELECT count(*) FROM shop.customer WHERE id = \(due)") == "0")
            let kept = try await shop.psql("SELECT min(id) FROM shop.customer")
            let missing = try await shop.psql("SELECT max(id) + 1000 FROM shop.customer")

            let processed = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:\(due)", environment: shop.keyEnvironment)
            #expect(processed.status == 0, "\(processed.stderr)")
            #expect(processed.stdout.hasPrefix("shop.customer:\(due) was processed once"), "\(processed.stdout)")

            // A customer the run kept: it exists, no run processed it, and explain says why.
            let notProcessed = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:\(kept)", environment: shop.keyEnvironment)
            #expect(notProcessed.status == 0, "\(notProcessed.stderr)")
            #expect(
                notProcessed.stdout.hasPrefix("shop.customer:\(kept) exists and was never processed by a run"),
                "\(notProcessed.stdout)")
            #expect(notProcessed.stdout.contains("gallra explain --subject shop.customer:\(kept)"))
            #expect(!notProcessed.stdout.contains("another audit key"))
            let json = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:\(kept)", "--format", "json",
                environment: shop.keyEnvironment)
            let report = try jsonObject(json)
            #expect(report["standing"] as? String == "not_processed")
            #expect(report["subject_exists"] as? Bool == true)
            #expect(report["found"] as? Bool == false)

            // No row and no record: 66, without the key in the message.
            let noSuch = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:\(missing)", environment: shop.keyEnvironment)
            #expect(noSuch.status == 66, "\(noSuch.stderr)")
            #expect(
                noSuch.stderr.contains("no subject in shop.customer has that key, and the audit trail has no record"))
            #expect(!noSuch.stderr.contains(missing))
            #expect(!noSuch.stderr.contains("another audit key"))
            #expect(noSuch.stdout.isEmpty)
            let noSuchJSON = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:\(missing)", "--format", "json",
                environment: shop.keyEnvironment)
            #expect(noSuchJSON.status == 66)
            #expect(try jsonObject(noSuchJSON)["standing"] as? String == "no_such_subject")

            // A misspelt table: 65 with the table it probably means.
            let misspelt = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.custmer:\(due)", environment: shop.keyEnvironment)
            #expect(misspelt.status == 65, "\(misspelt.stderr)")
            #expect(misspelt.stderr.contains("table shop.custmer does not exist; did you mean shop.customer?"))

            // Another key made every record of the policies over shop.customer: said so, 78, for the purged
            // customer and the kept one alike.
            let otherKey = shop.directory + "/other-audit-key"
            try "b3RoZXIta2V5LW9mLWFub3RoZXItaW5zdGFsbGF0aW9uLTAxMjM0NTY3ODk=\n".write(
                toFile: otherKey, atomically: true, encoding: .utf8)
            for id in [due, kept] {
                let wrong = try await shop.gallra(
                    "audit", "lookup", "--subject", "shop.customer:\(id)", "--audit-key-file", otherKey)
                #expect(wrong.status == 78, "\(wrong.stdout) \(wrong.stderr)")
                #expect(wrong.stderr.contains("this key made none of the records of the policies over shop.customer"))
                #expect(wrong.stderr.contains("made with another audit key"))
            }
        }
    }

    @Test func aKeyThatMadeSomeRecordsGetsTheOtherKeysAsANote() async throws {
        try await DemoShop.with(customers: 40) { shop in
            let otherKey = shop.directory + "/other-audit-key"
            try "b3RoZXIta2V5LW9mLWFub3RoZXItaW5zdGFsbGF0aW9uLTAxMjM0NTY3ODk=\n".write(
                toFile: otherKey, atomically: true, encoding: .utf8)
            // The customers due half a year earlier under one key, the rest under the other (a key replaced
            // between runs).
            for (asOf, key) in [("2026-05-29T00:00:00Z", shop.keyFile), (DemoShop.asOf, otherKey)] {
                let run = try await shop.gallra(
                    "run", "--once", "--policy", "inactive-customers", "--as-of", asOf,
                    environment: ["GALLRA_AUDIT_KEY_FILE": key])
                #expect(run.status == 0, "\(run.stderr)")
            }
            let keys = try await shop.psql(
                "SELECT count(DISTINCT key_check) FROM gallra.audit_block WHERE subjects > 0 AND key_check IS NOT NULL")
            try #require(keys == "2", "both keys made records")
            let kept = try await shop.psql("SELECT min(id) FROM shop.customer")
            let lookup = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:\(kept)", environment: shop.keyEnvironment)
            #expect(lookup.status == 0, "\(lookup.stderr)")
            #expect(lookup.stdout.contains("exists and was never processed by a run"))
            #expect(lookup.stdout.contains("\nnote: "), "\(lookup.stdout)")
            #expect(lookup.stdout.contains(" of the policies over shop.customer ("))
            #expect(lookup.stdout.contains("inactive-customers"))
            #expect(lookup.stdout.contains("were made with another audit key"))
        }
    }

    @Test func recordsFromBeforeBlocksNamedTheirKeyAreANote() async throws {
        try await DemoShop.with(customers: 5) { shop in
            // A block as a gallra before schema version 13 wrote it: no key named.
            let connection = try await PostgresConnection.connect(shop.conninfo)
            let digester = SubjectDigester(key: Array(repeating: 9, count: 32))
            _ = try await connection.transaction { connection in
                try await AuditTrail.append(
                    records: [
                        AuditRecord(subjectDigest: digester.digest(table: "shop.customer", key: "1"), counts: [])
                    ],
                    run: UUID().uuidString, policy: "inactive-customers", policyVersion: 1, on: connection)
            }
            await connection.close()
            let missing = try await shop.psql("SELECT max(id) + 1000 FROM shop.customer")
            let lookup = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:\(missing)", environment: shop.keyEnvironment)
            #expect(lookup.status == 66, "\(lookup.stderr)")
            #expect(
                lookup.stderr.contains(
                    "; 1 record of the policies over shop.customer (erasure-requests, inactive-customers, "
                        + "revoked-newsletter-consent) was written before blocks named their audit key"),
                "\(lookup.stderr)")
        }
    }
}
