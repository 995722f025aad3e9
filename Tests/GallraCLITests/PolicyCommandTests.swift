import Foundation
import Testing

/// The source tree, for the shipped example policies and the demo schema.
private func sourceRoot() throws -> String {
    guard let root = ProcessInfo.processInfo.environment["GALLRA_SOURCE_ROOT"] else {
        Issue.record("GALLRA_SOURCE_ROOT is not set: run the tests through `make test`")
        throw HarnessError.noServer
    }
    return root
}

/// A fresh database holding the demo shop's schema (no rows needed to validate).
private func withShopDatabase<T>(_ body: (_ name: String, _ conninfo: String) async throws -> T) async throws -> T {
    let root = try sourceRoot()
    return try await Harness.withDatabase { name, conninfo in
        let load = try await run(
            "/usr/bin/psql", [conninfo, "-qX", "-v", "ON_ERROR_STOP=1", "-f", "\(root)/config/demo/schema.sql"])
        try #require(load.status == 0, "loading the demo schema: \(load.stderr)")
        return try await body(name, conninfo)
    }
}

@Suite("gallra migrate and gallra policy")
struct PolicyCommandTests {
    @Test func validateOfflineChecksSyntaxAndSaysSo() async throws {
        let root = try sourceRoot()
        let result = try await gallra("policy", "validate", "\(root)/config/policies")
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("inactive-customers: syntax ok"))
        #expect(result.stdout.contains("former-employees: syntax ok"))
        #expect(result.stdout.contains("the files alone were checked"))
    }

    @Test(.timeLimit(.minutes(1))) func aFIFOIsRefusedAsAPolicyPathWithoutWaitingForAWriter() async throws {
        try await Harness.withTemporaryDirectory { dir in
            let fifo = "\(dir)/policy.yaml"
            #expect(mkfifo(fifo, 0o600) == 0)
            for command in ["validate", "apply"] {
                let named = try await gallra("policy", command, fifo, "--database", "host=/nonexistent")
                #expect(named.status == 66, "stderr: \(named.stderr)")
                #expect(named.stderr.contains("\(fifo): is a FIFO (named pipe), not a policy file"))
                // Found while walking a directory: refused by name too, never opened.
                let walked = try await gallra("policy", command, dir, "--database", "host=/nonexistent")
                #expect(walked.status == 66, "stderr: \(walked.stderr)")
                #expect(walked.stderr.contains("\(fifo): is a FIFO (named pipe), not a policy file"))
            }
        }
    }

    @Test func validateReportsATypoAtItsPlace() async throws {
        try await Harness.withTemporaryDirectory { dir in
            let file = "\(dir)/typo.yaml"
            try """
            policy: typo
            subject: { table: shop.customer, key: id }
            expires:
              inactiv_for: 1 year
              activity: last_seen_at
            data:
              - { table: shop.customer, delete: true }
            """.write(toFile: file, atomically: true, encoding: .utf8)
            let result = try await gallra("policy", "validate", file)
            #expect(result.status == 65)
            #expect(
                result.stdout.contains(
                    "\(file):4:3: error: inactiv_for: unknown key in expires; did you mean inactive_for?"))
        }
    }

    @Test func validateAgainstTheCatalogPrintsThePlan() async throws {
        let root = try sourceRoot()
        try await withShopDatabase { _, conninfo in
            let result = try await gallra("policy", "validate", "--database", conninfo, "\(root)/config/policies")
            #expect(result.status == 0, "stdout: \(result.stdout) stderr: \(result.stderr)")
            #expect(result.stdout.contains("policy inactive-customers (active), subject shop.customer by id"))
            #expect(result.stdout.contains("delete    shop.customer            the subject row"))
            #expect(result.stdout.contains("CREATE INDEX CONCURRENTLY ON shop.newsletter_log (customer_ref);"))

            let json = try await gallra(
                "policy", "validate", "--format", "json", "--database", conninfo, "\(root)/config/policies")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["checked_against_catalog"] as? Bool == true)
            let policies = try #require(object["policies"] as? [[String: Any]])
            #expect(
                policies.compactMap { $0["name"] as? String }.sorted()
                    == ["erasure-requests", "former-employees", "inactive-customers", "revoked-newsletter-consent"])
        }
    }

    @Test func aPolicyBlockedByAKeptChildIsRefusedWithTheFix() async throws {
        try await withShopDatabase { _, conninfo in
            try await Harness.withTemporaryDirectory { dir in
                let file = "\(dir)/blocked.yaml"
                // Orders are kept but still reference the customer through a RESTRICT foreign key.
                try """
                policy: blocked
                subject: { table: shop.customer, key: id }
                expires: { inactive_for: 1 year, activity: last_seen_at }
                data:
                  - { table: shop.order, anonymize: { email: fake_email } }
                  - { table: shop.customer, delete: true }
                """.write(toFile: file, atomically: true, encoding: .utf8)
                let result = try await gallra("policy", "validate", "--database", conninfo, file)
                #expect(result.status == 65)
                #expect(result.stdout.contains("order_customer_id_fkey"))
                #expect(result.stdout.contains("customer_id: null"))
            }
        }
    }

    @Test func aDeleteOrAnonymizeWithAnInvalidAnonymizationIsRefused() async throws {
        try await withShopDatabase { _, conninfo in
            try await Harness.withTemporaryDirectory { dir in
                let file = "\(dir)/erase.yaml"
                // The delete would be fine (kept orders are anonymized), but email is NOT NULL in shop.order.
                try """
                policy: erase
                subject: { table: shop.customer, key: id }
                expires: { inactive_for: 1 year, activity: last_seen_at }
                data:
                  - { table: shop.order, delete: true, anonymize: { email: null, customer_id: null } }
                """.write(toFile: file, atomically: true, encoding: .utf8)
                let result = try await gallra("policy", "validate", "--database", conninfo, file)
                #expect(result.status == 65)
                #expect(
                    result.stdout.contains(
                        "erase.yaml:5:60: error: anonymize: email is NOT NULL in shop.order, so null cannot be written"),
                    "\(result.stdout)")
                let fixed = try await gallra(
                    "policy", "validate", "--database", conninfo,
                    try { () throws -> String in
                        let text = try String(contentsOfFile: file, encoding: .utf8)
                        try text.replacingOccurrences(of: "email: null", with: "email: fake_email")
                            .write(toFile: file, atomically: true, encoding: .utf8)
                        return file
                    }())
                #expect(fixed.status == 0, "\(fixed.stdout) \(fixed.stderr)")
                #expect(
                    fixed.stdout.contains("or, where still referenced, anonymize customer_id: null, email: fake_email"))
            }
        }
    }

    @Test func migrateApplyListShowHistoryDisable() async throws {
        let root = try sourceRoot()
        try await withShopDatabase { name, conninfo in
            let policies = "\(root)/config/policies"

            let unmigrated = try await gallra("policy", "apply", "--database", conninfo, policies)
            #expect(unmigrated.status == 78)
            #expect(unmigrated.stderr.contains("run gallra migrate"))

            let check = try await gallra("migrate", "--check", "--database", conninfo)
            #expect(check.status == 78)
            let migrate = try await gallra("migrate", "--database", conninfo)
            #expect(migrate.status == 0, "stderr: \(migrate.stderr)")
            #expect(migrate.stdout.contains("applied migration 1"))
            let again = try await gallra("migrate", "--database", conninfo)
            #expect(again.stdout.contains("nothing to do"))
            #expect(try await gallra("migrate", "--check", "--database", conninfo).status == 0)

            let dryRun = try await gallra("policy", "apply", "--dry-run", "--database", conninfo, policies)
            #expect(dryRun.status == 0, "stderr: \(dryRun.stderr)")
            #expect(dryRun.stdout.contains("would create inactive-customers version 1"))
            #expect(try await Harness.psql("SELECT count(*) FROM gallra.policy", database: name) == "0")

            let apply = try await gallra("policy", "apply", "--database", conninfo, policies)
            #expect(apply.status == 0, "stderr: \(apply.stderr)")
            #expect(apply.stdout.contains("created inactive-customers version 1"))
            #expect(apply.stdout.contains("created former-employees version 1"))
            #expect(apply.stderr.contains("warning: no index on shop.newsletter_log"))
            let reapply = try await gallra("policy", "apply", "--database", conninfo, policies)
            #expect(reapply.stdout.contains("unchanged inactive-customers (version 1)"))
            #expect(try await Harness.psql("SELECT count(*) FROM gallra.policy", database: name) == "4")

            let list = try await gallra("policy", "list", "--database", conninfo)
            #expect(list.status == 0, "stderr: \(list.stderr)")
            #expect(list.stdout.contains("POLICY"))
            let row = try #require(list.stdout.split(separator: "\n").first { $0.hasPrefix("inactive-customers") })
            #expect(row.contains("active"))
            #expect(row.contains("yes"))
            #expect(row.contains("daily at 03:00 Europe/Stockholm"))

            let show = try await gallra("policy", "show", "inactive-customers", "--database", conninfo)
            #expect(show.status == 0, "stderr: \(show.stderr)")
            #expect(show.stdout.contains("policy   inactive-customers version 1 (active)"))
            #expect(show.stdout.contains("subject shop.customer by id"))
            let missing = try await gallra(
                "policy", "show", "inactive-customers", "--version", "9", "--database", conninfo)
            #expect(missing.status == 65)

            let disable = try await gallra("policy", "disable", "former-employees", "--database", conninfo)
            #expect(disable.stdout.contains("disabled former-employees: version 2"))
            let history = try await gallra(
                "policy", "history", "former-employees", "--format", "json", "--database", conninfo)
            let versions = try #require(
                try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]])
            #expect(versions.compactMap { $0["state"] as? String } == ["active", "disabled"])
        }
    }

    @Test func policyTimesInJSONAreRFC3339InUTC() async throws {
        let root = try sourceRoot()
        try await withShopDatabase { name, conninfo in
            #expect(try await gallra("migrate", "--database", conninfo).status == 0)
            let before = Date()
            #expect(try await gallra("policy", "apply", "--database", conninfo, "\(root)/config/policies").status == 0)
            let after = Date()
            // The oracle: the stored time, read by psql as seconds since 1970.
            let stored = try #require(
                Double(
                    try await Harness.psql(
                        "SELECT extract(epoch FROM applied_at) FROM gallra.policy WHERE name = 'inactive-customers'",
                        database: name)))
            #expect(stored >= before.timeIntervalSince1970 - 1 && stored <= after.timeIntervalSince1970 + 1)

            let list = try await gallra("policy", "list", "--format", "json", "--database", conninfo)
            #expect(list.status == 0, "stderr: \(list.stderr)")
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
            let row = try #require(rows.first { $0["name"] as? String == "inactive-customers" })
            let nextRunText = try #require(row["next_run"] as? String)
            let nextRun = try parseRFC3339(nextRunText)
            // "daily at 03:00 Europe/Stockholm": within a day (and an hour of DST) of now, at 03:00 there.
            #expect(nextRun > before && nextRun.timeIntervalSince(before) <= 25 * 3600)
            let localTime = try await Harness.psql(
                "SELECT to_char(timestamptz '\(nextRunText)' AT TIME ZONE 'Europe/Stockholm', 'HH24:MI:SS')")
            #expect(localTime == "03:00:00")

            let show = try await gallra(
                "policy", "show", "inactive-customers", "--format", "json", "--database", conninfo)
            #expect(show.status == 0, "stderr: \(show.stderr)")
            let report = try #require(
                try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
            let shownAt = try parseRFC3339(try #require(report["applied_at"] as? String))
            #expect(abs(shownAt.timeIntervalSince1970 - stored) < 0.000_01)

            let history = try await gallra(
                "policy", "history", "inactive-customers", "--format", "json", "--database", conninfo)
            #expect(history.status == 0, "stderr: \(history.stderr)")
            let versions = try #require(
                try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]])
            let historyAt = try parseRFC3339(try #require(versions.first?["applied_at"] as? String))
            #expect(abs(historyAt.timeIntervalSince1970 - stored) < 0.000_01)
        }
    }

    @Test func anApplyWithAnyErrorStoresNothing() async throws {
        let root = try sourceRoot()
        try await withShopDatabase { name, conninfo in
            #expect(try await gallra("migrate", "--database", conninfo).status == 0)
            try await Harness.withTemporaryDirectory { dir in
                let bad = "\(dir)/bad.yaml"
                try """
                policy: bad
                subject: { table: shop.customer, key: id }
                expires: { inactive_for: 1 year, activity: no_such_column }
                data:
                  - { table: shop.customer, delete: true }
                """.write(toFile: bad, atomically: true, encoding: .utf8)
                let result = try await gallra(
                    "policy", "apply", "--database", conninfo, "\(root)/config/policies/inactive-customers.yaml", bad)
                #expect(result.status == 65)
                #expect(result.stdout.contains("no_such_column"))
                #expect(result.stderr.contains("nothing was stored"))
                #expect(try await Harness.psql("SELECT count(*) FROM gallra.policy", database: name) == "0")

                // The same policy twice: refused before anything is stored.
                let copy = "\(dir)/copy.yaml"
                try FileManager.default.copyItem(
                    atPath: "\(root)/config/policies/inactive-customers.yaml", toPath: copy)
                let twice = try await gallra(
                    "policy", "apply", "--database", conninfo, "\(root)/config/policies/inactive-customers.yaml", copy)
                #expect(twice.status == 65)
                #expect(try await Harness.psql("SELECT count(*) FROM gallra.policy", database: name) == "0")
            }
        }
    }

    @Test func showListAndValidateSayPurposeAndLegalBasis() async throws {
        let root = try sourceRoot()
        try await withShopDatabase { _, conninfo in
            try await Harness.withTemporaryDirectory { dir in
                // One policy states neither key; another a block purpose of two lines and a basis.
                let file = "\(dir)/more.yaml"
                try """
                policy: plain
                subject: { table: shop.customer, key: id }
                expires: { inactive_for: 2 years, activity: last_seen_at }
                data:
                  - { table: shop.wishlist_item, delete: true }
                ---
                policy: wishlists
                purpose: |
                  Keeping a customer's wishlist.
                  Reminding them of it.
                legal_basis: legitimate_interests
                subject: { table: shop.customer, key: id }
                expires: { inactive_for: 3 years, activity: last_seen_at }
                data:
                  - { table: shop.wishlist_item, delete: true }
                """.write(toFile: file, atomically: true, encoding: .utf8)
                let policies = "\(root)/config/policies"

                let validate = try await gallra("policy", "validate", "--database", conninfo, policies)
                #expect(validate.status == 0, "stdout: \(validate.stdout) stderr: \(validate.stderr)")
                #expect(
                    validate.stdout.contains(
                        "  legal basis: consent (GDPR Art. 6(1)(a)); purpose: Sending the newsletter and seeing which issues were read.\n"
                    ))

                #expect(try await gallra("migrate", "--database", conninfo).status == 0)
                let apply = try await gallra("policy", "apply", "--database", conninfo, policies, file)
                #expect(apply.status == 0, "stderr: \(apply.stderr)")

                // list: a BASIS column, "-" where none is stated.
                let list = try await gallra("policy", "list", "--database", conninfo)
                #expect(list.status == 0, "stderr: \(list.stderr)")
                let lines = list.stdout.split(separator: "\n")
                #expect(
                    lines.first?.split(separator: " ", omittingEmptySubsequences: true).prefix(5) == [
                        "POLICY", "VERSION", "STATE", "BASIS", "VALID",
                    ])
                func columns(_ name: String) -> [Substring] {
                    lines.first { $0.hasPrefix("\(name) ") }?.split(separator: " ", omittingEmptySubsequences: true)
                        .prefix(5).map { $0 } ?? []
                }
                #expect(columns("inactive-customers") == ["inactive-customers", "1", "active", "contract", "yes"])
                #expect(
                    columns("revoked-newsletter-consent") == [
                        "revoked-newsletter-consent", "1", "draft", "consent", "yes",
                    ])
                #expect(columns("former-employees") == ["former-employees", "1", "active", "-", "yes"])
                #expect(columns("plain") == ["plain", "1", "draft", "-", "yes"])
                #expect(columns("wishlists") == ["wishlists", "1", "draft", "legitimate_interests", "yes"])

                let listJSON = try await gallra("policy", "list", "--format", "json", "--database", conninfo)
                #expect(listJSON.status == 0, "stderr: \(listJSON.stderr)")
                let rows = try #require(
                    try JSONSerialization.jsonObject(with: Data(listJSON.stdout.utf8)) as? [[String: Any]])
                func row(_ name: String) throws -> [String: Any] {
                    try #require(rows.first { $0["name"] as? String == name })
                }
                #expect(try row("inactive-customers")["legal_basis"] as? String == "contract")
                #expect(
                    try row("inactive-customers")["purpose"] as? String
                        == "Running the customer's account, delivering their orders and handling returns and complaints."
                )
                #expect(try row("former-employees")["legal_basis"] is NSNull)
                #expect(try row("plain")["legal_basis"] is NSNull)
                #expect(try row("plain")["purpose"] is NSNull)
                #expect(
                    try row("wishlists")["purpose"] as? String
                        == "Keeping a customer's wishlist.\nReminding them of it.")

                // show: both lines in text, both fields in JSON.
                let show = try await gallra("policy", "show", "inactive-customers", "--database", conninfo)
                #expect(show.status == 0, "stderr: \(show.stderr)")
                #expect(
                    show.stdout.contains(
                        "policy   inactive-customers version 1 (active)\n"
                            + "purpose  Running the customer's account, delivering their orders and handling returns and complaints.\n"
                            + "basis    contract (GDPR Art. 6(1)(b))\napplied  "))
                let block = try await gallra("policy", "show", "wishlists", "--database", conninfo)
                #expect(
                    block.stdout.contains(
                        """
                        purpose  Keeping a customer's wishlist.
                                 Reminding them of it.
                        basis    legitimate_interests (GDPR Art. 6(1)(f))
                        """))
                let plain = try await gallra("policy", "show", "plain", "--database", conninfo)
                #expect(plain.stdout.contains("purpose  (not stated)\nbasis    (not stated)\n"))

                let showJSON = try await gallra(
                    "policy", "show", "revoked-newsletter-consent", "--format", "json", "--database", conninfo)
                #expect(showJSON.status == 0, "stderr: \(showJSON.stderr)")
                let report = try #require(
                    try JSONSerialization.jsonObject(with: Data(showJSON.stdout.utf8)) as? [String: Any])
                #expect(report["legal_basis"] as? String == "consent")
                #expect(report["purpose"] as? String == "Sending the newsletter and seeing which issues were read.")
                let definition = try #require(report["definition"] as? [String: Any])
                #expect(definition["legal_basis"] as? String == "consent")
                let plainJSON = try await gallra("policy", "show", "plain", "--format", "json", "--database", conninfo)
                let plainReport = try #require(
                    try JSONSerialization.jsonObject(with: Data(plainJSON.stdout.utf8)) as? [String: Any])
                #expect(plainReport["legal_basis"] is NSNull)
                #expect(plainReport["purpose"] is NSNull)
                #expect((plainReport["definition"] as? [String: Any])?["legal_basis"] == nil)
            }
        }
    }

    @Test func anInvalidRowWrittenByOtherMeansIsReportedAndTheOthersStillList() async throws {
        let root = try sourceRoot()
        try await withShopDatabase { name, conninfo in
            #expect(try await gallra("migrate", "--database", conninfo).status == 0)
            #expect(try await gallra("policy", "apply", "--database", conninfo, "\(root)/config/policies").status == 0)
            try await Harness.psql(
                """
                INSERT INTO gallra.policy (name, version, state, definition, digest, source)
                VALUES ('back-office', 1, 'active', '{"policy": "back-office", "state": "active", "subjet": {}}',
                        repeat('0', 64), 'back office')
                """, database: name)
            let list = try await gallra("policy", "list", "--database", conninfo)
            #expect(list.status == 0, "stderr: \(list.stderr)")
            let row = try #require(list.stdout.split(separator: "\n").first { $0.hasPrefix("back-office") })
            #expect(row.contains("NO"))
            #expect(list.stdout.contains("back-office: "))
            #expect(
                list.stdout.split(separator: "\n").contains { $0.hasPrefix("inactive-customers") && $0.contains("yes") }
            )
        }
    }
}

/// An RFC 3339 time as gallra writes it in JSON (UTC, `Z`, a fraction of up to six digits only when it is not
/// zero), checked against that pattern and read back.
private func parseRFC3339(_ text: String) throws -> Date {
    let pattern = /(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{0,5}[1-9]))?Z/
    let match = try #require(try pattern.wholeMatch(in: text), "not RFC 3339 in UTC: \(text)")
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let components = DateComponents(
        year: Int(match.1), month: Int(match.2), day: Int(match.3), hour: Int(match.4), minute: Int(match.5),
        second: Int(match.6))
    let whole = try #require(calendar.date(from: components))
    let fraction = match.7.map { Double("0.\($0)")! } ?? 0
    return whole.addingTimeInterval(fraction)
}
