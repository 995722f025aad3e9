import Foundation
import Testing

/// `--subject TABLE:COLUMN=VALUE` and the exit statuses of finding a subject, on the demo shop.
@Suite("gallra --subject")
struct SubjectCLITests {
    static let policy = "revoked-newsletter-consent"

    @Test func aUniqueEmailNamesTheCustomer() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let row = try await shop.psql("SELECT id || '|' || email FROM shop.customer ORDER BY id DESC LIMIT 1")
                .split(separator: "|").map(String.init)
            try #require(row.count == 2)
            let (id, email) = (row[0], row[1])
            let shown = try await shop.gallra(
                "consent", "show", "--subject", "shop.customer:email=\(email)", "--format", "json")
            #expect(shown.status == 0, "\(shown.stderr)")
            #expect(try jsonObject(shown)["subject"] as? String == "shop.customer:\(id)")

            // Quoted names work as in SQL; the key's text form is PostgreSQL's.
            let quoted = try await shop.gallra(
                "consent", "show", "--subject", "\"shop\".\"customer\":\"email\"=\(email)", "--format", "json")
            #expect(try jsonObject(quoted)["subject"] as? String == "shop.customer:\(id)")
            let padded = try await shop.gallra("consent", "show", "--subject", "shop.customer:id=00\(id)")
            #expect(padded.status == 0, "\(padded.stderr)")

            let lookup = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:email=\(email)", "--format", "json",
                environment: shop.keyEnvironment)
            #expect(lookup.status == 0, "\(lookup.stderr)")
            let report = try jsonObject(lookup)
            #expect(report["subject"] as? String == "shop.customer:\(id)")
            #expect(report["subject_digest"] as? String == shop.digest(customer: Int(id) ?? -1))
        }
    }

    @Test func noSuchSubjectExits66WithoutTheValue() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let before = try await shop.psql("SELECT count(*) FROM gallra.consent_event")
            for (arguments, message) in [
                (
                    [
                        "consent", "grant", "--subject", "shop.customer:email=nobody987@example.invalid", "--policy",
                        Self.policy,
                    ],
                    "no subject in shop.customer has that email"
                ),
                (
                    ["consent", "revoke", "--subject", "shop.customer:987654", "--policy", Self.policy],
                    "no subject in shop.customer has that key (id)"
                ),
                (
                    ["consent", "show", "--subject", "shop.customer:987654"],
                    "no subject in shop.customer has that key (id)"
                ),
                (
                    ["audit", "lookup", "--subject", "shop.customer:email=nobody987@example.invalid"],
                    "no subject in shop.customer has that email"
                ),
                // Only the first = splits: the value holds the second.
                (
                    ["consent", "show", "--subject", "shop.customer:email=a=987@example.org"],
                    "no subject in shop.customer has that email"
                ),
            ] {
                let result = try await run(
                    Harness.gallraPath, arguments + ["--database", shop.conninfo], environment: shop.keyEnvironment)
                #expect(result.status == 66, "\(arguments): \(result.stderr)")
                #expect(result.stderr == "gallra: \(message)\n", "\(arguments)")
                #expect(!result.stderr.contains("987"))
                #expect(result.stdout.isEmpty)
            }
            #expect(try await shop.psql("SELECT count(*) FROM gallra.consent_event") == before)

            // A key needs no row in the trail (erased subjects have none), but with neither a row nor a record
            // there is no such subject either.
            let erased = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:987654", environment: shop.keyEnvironment)
            #expect(erased.status == 66, "\(erased.stderr)")
            #expect(erased.stderr.hasPrefix("gallra: no subject in shop.customer has that key, and the audit trail "))
            #expect(!erased.stderr.contains("987"))
            #expect(erased.stdout.isEmpty)
        }
    }

    @Test func dataErrorsExit65() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let holds = try await shop.psql("SELECT count(*) FROM shop.customer WHERE NOT legal_hold")
            let cases: [(subject: String, message: String)] = [
                (
                    "shop.customer:legal_hold=false",
                    "\(holds) subjects in shop.customer have that legal_hold; name one by its key "
                        + "(shop.customer:KEY) or by a column whose values are unique"
                ),
                ("shop.customer:abc987", "the key given is not a value of shop.customer.id, of type bigint"),
                (
                    "shop.customer:birth_date=yesterday987",
                    "the value given is not a value of shop.customer.birth_date, of type date"
                ),
                (
                    "shop.customer:emial987=x987@example.org",
                    "shop.customer has no column of the name given before = (its columns: id, email"
                ),
                // An = inside double quotes is part of the column's name.
                (
                    "shop.customer:\"e=mail987\"=x",
                    "shop.customer has no column of the name given before = (its columns: id, email"
                ),
                // A key that holds = after an identifier-like start reads as a column; the message says how to
                // write it, and repeats no part of it.
                ("shop.customer:abc987==", "shop.customer has no column of the name given before ="),
                (
                    "shop.product:987",
                    "no stored policy has its subjects in shop.product, so gallra knows no key for it"
                ),
            ]
            for refusal in cases {
                let result = try await shop.gallra("consent", "show", "--subject", refusal.subject)
                #expect(result.status == 65, "\(refusal.subject): \(result.stderr)")
                #expect(result.stderr.hasPrefix("gallra: \(refusal.message)"), "\(result.stderr)")
                #expect(!result.stderr.contains("987"), "\(result.stderr)")
            }
            let key = try await shop.gallra("consent", "show", "--subject", "shop.customer:abc987==")
            #expect(key.stderr.hasSuffix("A key that holds = is written with its key column: shop.customer:id=KEY\n"))
        }
    }

    @Test func helpShowsTheColumnForm() async throws {
        for command in [["consent", "grant"], ["consent", "show"], ["audit", "lookup"], ["consent"]] {
            let help = try await run(Harness.gallraPath, command + ["--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("--subject shop.customer:email=ada@example.org"), "\(command)")
        }
    }

    @Test func aMalformedSubjectIsAUsageError() async throws {
        for (subject, message) in [
            ("shop.customer:email=", "--subject: the value after shop.customer:email= is empty."),
            ("customer:email=a@b", "--subject: name the table with its schema"),
            ("shop.customer", "--subject takes TABLE:KEY or TABLE:COLUMN=VALUE"),
        ] {
            for command in [["consent", "show"], ["audit", "lookup"]] {
                let result = try await run(
                    Harness.gallraPath, command + ["--subject", subject, "--database", "dbname=unused"])
                #expect(result.status == 64, "\(command) \(subject): \(result.stderr)")
                #expect(result.stderr.contains(message), "\(result.stderr)")
            }
        }
    }
}
