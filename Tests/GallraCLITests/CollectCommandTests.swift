import Foundation
import Testing

/// `collect: with_consent` through the commands: validate says which tables get a guard, apply installs it,
/// show lists it, disable removes it; the shop's insert is refused and then accepted around `gallra consent grant`.
@Suite("gallra policy with collect: with_consent")
struct CollectCommandTests {
    static let policy = """
        policy: newsletter-guarded
        legal_basis: consent
        collect: with_consent
        state: active
        subject: { table: shop.customer, key: id }
        expires: { consent_revoked: 30 days, consent: gallra }
        data:
          - { table: shop.newsletter_log, via: customer_ref, delete: true }
        """

    @Test func validateApplyShowGuardAndDisable() async throws {
        guard let root = ProcessInfo.processInfo.environment["GALLRA_SOURCE_ROOT"] else {
            Issue.record("GALLRA_SOURCE_ROOT is not set: run the tests through `make test`")
            return
        }
        try await Harness.withDatabase { _, conninfo in
            let load = try await run(
                "/usr/bin/psql", [conninfo, "-qX", "-v", "ON_ERROR_STOP=1", "-f", "\(root)/config/demo/schema.sql"])
            try #require(load.status == 0, "loading the demo schema: \(load.stderr)")
            func psql(_ sql: String) async throws -> CommandResult {
                try await run("/usr/bin/psql", [conninfo, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql])
            }
            let seed = try await psql(
                "INSERT INTO shop.customer (id, email, full_name) OVERRIDING SYSTEM VALUE VALUES (7, 'a@example.com', 'A')"
            )
            try #require(seed.status == 0, "\(seed.stderr)")
            try await Harness.withTemporaryDirectory { dir in
                let file = "\(dir)/newsletter-guarded.yaml"
                try Self.policy.write(toFile: file, atomically: true, encoding: .utf8)

                let validate = try await gallra("policy", "validate", "--database", conninfo, file)
                #expect(validate.status == 0, "\(validate.stdout) \(validate.stderr)")
                #expect(
                    validate.stdout.contains(
                        "collect: with consent only: a trigger refuses rows of subjects without consent in force in shop.newsletter_log (customer_ref)"
                    ), "\(validate.stdout)")

                #expect(try await gallra("migrate", "--database", conninfo).status == 0)
                let dry = try await gallra("policy", "apply", "--dry-run", "--database", conninfo, file)
                #expect(
                    dry.stdout.contains("    consent guard would be installed on shop.newsletter_log (customer_ref)"),
                    "\(dry.stdout)")
                let apply = try await gallra("policy", "apply", "--database", conninfo, file)
                #expect(apply.status == 0, "\(apply.stdout) \(apply.stderr)")
                #expect(
                    apply.stdout == "created newsletter-guarded version 1\n"
                        + "    consent guard installed on shop.newsletter_log (customer_ref)\n", "\(apply.stdout)")
                let again = try await gallra("policy", "apply", "--database", conninfo, file)
                #expect(again.stdout == "unchanged newsletter-guarded (version 1)\n", "\(again.stdout)")

                let refused = try await psql(
                    "INSERT INTO shop.newsletter_log (customer_ref, event, at) VALUES (7, 'subscribed', now())")
                #expect(refused.status != 0)
                #expect(
                    refused.stderr.contains("GC009") || refused.stderr.contains("only with consent"),
                    "\(refused.stderr)")
                #expect(refused.stderr.contains("policy newsletter-guarded"), "\(refused.stderr)")

                let grant = try await gallra(
                    "consent", "grant", "--subject", "shop.customer:7", "--policy", "newsletter-guarded", "--source",
                    "web", "--database", conninfo)
                #expect(grant.status == 0, "\(grant.stdout) \(grant.stderr)")
                let accepted = try await psql(
                    "INSERT INTO shop.newsletter_log (customer_ref, event, at) VALUES (7, 'subscribed', now())")
                #expect(accepted.status == 0, "\(accepted.stderr)")

                let show = try await gallra("policy", "show", "newsletter-guarded", "--database", conninfo)
                #expect(show.status == 0, "\(show.stderr)")
                #expect(show.stdout.contains("collect  with_consent"), "\(show.stdout)")
                #expect(show.stdout.contains("shop.newsletter_log (customer_ref): triggers gallra_consent_guard_"))
                let json = try jsonObject(
                    try await gallra("policy", "show", "newsletter-guarded", "--format", "json", "--database", conninfo)
                )
                #expect(json["collect"] as? String == "with_consent")
                let guards = try #require(json["guards"] as? [[String: Any]])
                #expect(guards.map { $0["table"] as? String } == ["shop.newsletter_log"])
                #expect(guards.first?["intact"] as? Bool == true)

                // The table re-created (a restore, a migration of the shop's): show says the guard is missing,
                // and the next apply puts it back.
                let recreate = try await psql(
                    "ALTER TABLE shop.newsletter_log RENAME TO newsletter_log_old; CREATE TABLE shop.newsletter_log (LIKE shop.newsletter_log_old INCLUDING ALL)"
                )
                #expect(recreate.status == 0, "\(recreate.stderr)")
                let moved = try await gallra("policy", "show", "newsletter-guarded", "--database", conninfo)
                #expect(moved.stdout.contains("shop.newsletter_log (customer_ref): MISSING"), "\(moved.stdout)")
                let drop = try await psql("DROP TABLE shop.newsletter_log_old")
                #expect(drop.status == 0, "\(drop.stderr)")
                let missing = try await gallra("policy", "show", "newsletter-guarded", "--database", conninfo)
                #expect(missing.stdout.contains("MISSING"), "\(missing.stdout)")
                #expect(try await gallra("policy", "apply", "--database", conninfo, file).status == 0)
                let back = try await psql(
                    "INSERT INTO shop.newsletter_log (customer_ref, event, at) VALUES (8, 'subscribed', now())")
                #expect(back.status != 0, "the guard is back on the new table")

                let disable = try await gallra("policy", "disable", "newsletter-guarded", "--database", conninfo)
                #expect(disable.status == 0, "\(disable.stderr)")
                #expect(disable.stdout.contains("    consent guard removed from shop.newsletter_log (customer_ref)"))
                let triggers = try await psql(
                    "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'gallra_consent_guard_%'")
                #expect(triggers.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
                let free = try await psql(
                    "INSERT INTO shop.newsletter_log (customer_ref, event, at) VALUES (8, 'subscribed', now())")
                #expect(free.status == 0, "\(free.stderr)")
            }
        }
    }

    @Test func validateRefusesCollectionWithoutConsentAsItsBasis() async throws {
        try await Harness.withTemporaryDirectory { dir in
            let file = "\(dir)/contract.yaml"
            try Self.policy.replacingOccurrences(of: "legal_basis: consent", with: "legal_basis: contract")
                .replacingOccurrences(
                    of: "expires: { consent_revoked: 30 days, consent: gallra }",
                    with: "expires: { inactive_for: 1 year, activity: last_seen_at }"
                )
                .write(toFile: file, atomically: true, encoding: .utf8)
            guard let root = ProcessInfo.processInfo.environment["GALLRA_SOURCE_ROOT"] else { return }
            try await Harness.withDatabase { _, conninfo in
                let load = try await run(
                    "/usr/bin/psql", [conninfo, "-qX", "-v", "ON_ERROR_STOP=1", "-f", "\(root)/config/demo/schema.sql"])
                try #require(load.status == 0)
                let result = try await gallra("policy", "validate", "--database", conninfo, file)
                #expect(result.status == 65)
                #expect(result.stdout.contains("\(file):3:10: error: collect: with_consent"), "\(result.stdout)")
                #expect(result.stdout.contains("legal_basis: contract"))
            }
        }
    }
}
