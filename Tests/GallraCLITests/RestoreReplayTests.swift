import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Erasures survive a backup restore: a `pg_dump` of the demo shop, a purge and an erasure on request after it, the
/// dump restored into a fresh database of the same name; then `gallra ledger replay`, compared with an oracle taken
/// from the original database's audit trail and with the original database itself.
@Suite("Restore and replay", .serialized)
struct RestoreReplayTests {
    /// `(policy, digest)` of each audit record after block `after` whose subject the trail does not record under the
    /// policy up to `after`: the subjects a restore of a dump taken at block `after` has again.
    private func processedAfter(_ after: Int, in shop: DemoShop) async throws -> Set<String> {
        Set(
            try await shop.psql(
                """
                SELECT DISTINCT b.policy || ' ' || s.subject_digest
                FROM gallra.audit_subject s JOIN gallra.audit_block b ON b.sequence = s.block
                WHERE b.sequence > \(after)
                  AND NOT EXISTS (
                      SELECT FROM gallra.audit_subject s0 JOIN gallra.audit_block b0 ON b0.sequence = s0.block
                      WHERE b0.sequence <= \(after) AND b0.policy = b.policy AND s0.subject_digest = s.subject_digest)
                """
            ).split(separator: "\n").map(String.init))
    }

    /// md5 of every table of the shop and of gallra's consent registry: the data a replay acts on.
    private func dataChecksums(_ shop: DemoShop) async throws -> String {
        let tables = [
            "shop.address", "shop.customer", "shop.store", "shop.product", #"shop."order""#, "shop.order_line",
            "shop.wishlist_item", "shop.cart", "shop.cart_item", "shop.newsletter_log", "shop.newsletter_consent",
            "shop.employee", "gallra.consent_event",
        ]
        return try await shop.psql(
            tables.map {
                "SELECT '\($0)', md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) FROM \($0) AS r"
            }.joined(separator: " UNION ALL "))
    }

    /// The subjects each policy would process at the demo instant, from `gallra plan --format json`.
    private func planned(_ shop: DemoShop, environment: [String: String]) async throws -> [String: Int] {
        let plan = try await shop.gallra("plan", "--as-of", DemoShop.asOf, "--format", "json", environment: environment)
        try #require(plan.status == 0, "\(plan.stderr)")
        let report = try #require(try jsonObject(plan)["report"] as? [String: Any])
        let policies = try #require(report["policies"] as? [[String: Any]])
        var expiring: [String: Int] = [:]
        for policy in policies {
            expiring[policy["name"] as? String ?? ""] = policy["expiring"] as? Int ?? -1
        }
        return expiring
    }

    @Test("replay processes again exactly the subjects processed after the dump, and nothing else changes")
    func replayAfterARestore() async throws {
        try await DemoShop.with(customers: 400) { shop in
            let ledger = "\(shop.directory)/ledger"
            let environment = shop.keyEnvironment.merging(["GALLRA_LEDGER_PATH": ledger]) { _, new in new }
            let customers = try await shop.psql(
                "SELECT string_agg(id::text, ' ' ORDER BY id) FROM (SELECT id FROM shop.customer "
                    + "WHERE NOT legal_hold AND last_seen_at > \(DemoShop.asOfSQL) - interval '30 days' "
                    + "ORDER BY id LIMIT 2) AS c"
            ).split(separator: " ").map(String.init)
            try #require(customers.count == 2)
            // Before the dump: one erasure on request, in the trail the dump keeps.
            let before = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(customers[0])", "--reason", "before", environment: environment)
            try #require(before.status == 0, "\(before.stderr)")
            let dumpHead = Int(try await shop.psql("SELECT sequence FROM gallra.audit_head")) ?? -1
            #expect(dumpHead == 1)
            let dump = "\(shop.directory)/shop.dump"
            let dumped = try await run("/usr/bin/pg_dump", ["-Fc", "-f", dump, shop.conninfo])
            try #require(dumped.status == 0, "pg_dump: \(dumped.stderr)")

            // After the dump: a purge, and an erasure on request.
            let purge = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, "--format", "json", environment: environment)
            try #require(purge.status == 0, "\(purge.stderr)")
            let erased = try await shop.gallra(
                "erase", "--subject", "shop.customer:\(customers[1])", "--reason", "after", environment: environment)
            try #require(erased.status == 0, "\(erased.stderr)")
            let oracle = try await processedAfter(dumpHead, in: shop)
            try #require(oracle.count > 50, "the purge and the erasure processed subjects: \(oracle.count)")
            let purged = try await dataChecksums(shop)
            let plannedAfterPurge = try await planned(shop, environment: environment)

            // The restore: the dump into a fresh database under the same name.
            try await Harness.psql("ALTER DATABASE \(shop.database) RENAME TO \(shop.database)_purged")
            do {
                try await Harness.psql("CREATE DATABASE \(shop.database)")
                let restored = try await run("/usr/bin/pg_restore", ["-d", shop.conninfo, dump])
                try #require(restored.status == 0, "pg_restore: \(restored.stderr)")
                #expect(try await shop.psql("SELECT sequence FROM gallra.audit_head") == "\(dumpHead)")
                let restoredData = try await dataChecksums(shop)
                #expect(restoredData != purged)

                // The database is older than its ledger: the service holds off, and so does run --once.
                let daemon = try DaemonProcess(
                    database: shop.conninfo, keyFile: shop.keyFile, environment: ["GALLRA_LEDGER_PATH": ledger])
                try await daemon.notify.wait(for: "READY=1")
                try await daemon.notify.waitForStatus(containing: "holding off", within: 15)
                daemon.signal(SIGUSR1)
                try await waitUntil("the trigger is refused", within: 5) { daemon.log.contains("trigger (") }
                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
                #expect(try await dataChecksums(shop) == restoredData)
                #expect(try await shop.psql("SELECT count(*) FROM gallra.run") == "1")
                let once = try await shop.gallra("run", "--once", "--as-of", DemoShop.asOf, environment: environment)
                #expect(once.status == 75, "\(once.stdout) \(once.stderr)")
                #expect(once.stderr.contains("gallra ledger replay"), "\(once.stderr)")
                #expect(try await dataChecksums(shop) == restoredData)

                // The dry run finds the oracle's subjects and changes nothing.
                let dry = try await shop.gallra(
                    "ledger", "replay", "--dry-run", "--format", "json", environment: environment)
                #expect(dry.status == 0, "\(dry.stdout) \(dry.stderr)")
                let dryReport = try jsonObject(dry)
                #expect(dryReport["replayed"] as? Int == oracle.count)
                let text = try await shop.gallra("ledger", "replay", "--dry-run", environment: environment)
                #expect(text.status == 0, "\(text.stderr)")
                #expect(text.stdout.contains("to process"), "\(text.stdout)")
                #expect(text.stdout.contains("inactive-customers v1: keys found, first 5: "), "\(text.stdout)")
                #expect(text.stdout.contains("dry run: \(oracle.count) subjects would be processed again"))
                #expect(try await dataChecksums(shop) == restoredData)
                #expect(try await shop.psql("SELECT count(*) FROM gallra.run") == "1")

                let replay = try await shop.gallra("ledger", "replay", "--format", "json", environment: environment)
                #expect(replay.status == 0, "\(replay.stdout) \(replay.stderr)")
                let report = try jsonObject(replay)
                #expect(report["replayed"] as? Int == oracle.count)
                #expect(report["restore_recorded"] as? Bool == true)
                let run = try #require((report["run"] as? [String: Any])?["run_id"] as? String)
                #expect(try await shop.psql("SELECT trigger FROM gallra.run WHERE id = '\(run)'") == "replay")
                // Exactly the oracle's subjects, each under the policy that processed it after the dump.
                let replayed = Set(
                    try await shop.psql(
                        """
                        SELECT b.policy || ' ' || s.subject_digest
                        FROM gallra.audit_subject s JOIN gallra.audit_block b ON b.sequence = s.block
                        WHERE b.run = '\(run)'
                        """
                    ).split(separator: "\n").map(String.init))
                #expect(replayed == oracle)
                // Every row as the original database has it after the purge and the erasure: nothing else changed.
                #expect(try await dataChecksums(shop) == purged)
                #expect(try await planned(shop, environment: environment) == plannedAfterPurge)
                #expect(
                    plannedAfterPurge.filter { $0.key != "revoked-newsletter-consent" }.values.allSatisfy { $0 == 0 })
                #expect(try await shop.gallra("audit", "verify").status == 0)
                let verified = try await shop.gallra("ledger", "verify", ledger)
                #expect(verified.status == 0, "\(verified.stdout) \(verified.stderr)")

                // Resolved: live runs go on, with nothing left to do.
                let resumed = try await shop.gallra(
                    "run", "--once", "--as-of", DemoShop.asOf, "--format", "json", environment: environment)
                #expect(resumed.status == 0, "\(resumed.stdout) \(resumed.stderr)")
                #expect(try await dataChecksums(shop) == purged)
                // A ledger cut at a line boundary, or with a digest edited, is detected.
                let head = try await shop.psql("SELECT hash FROM gallra.audit_head")
                let lines = try String(contentsOfFile: ledger, encoding: .utf8).split(separator: "\n")
                let cut = "\(shop.directory)/cut.ledger"
                try (lines.dropLast().joined(separator: "\n") + "\n").write(
                    toFile: cut, atomically: true, encoding: .utf8)
                #expect(try await shop.gallra("ledger", "verify", cut, "--expect-head", head).status == 65)
                let digest = try #require(oracle.first?.split(separator: " ").last.map(String.init))
                let edited = "\(shop.directory)/edited.ledger"
                let flipped = digest.dropLast() + (digest.last == "0" ? "1" : "0")
                try (lines.joined(separator: "\n") + "\n").replacingOccurrences(of: digest, with: String(flipped))
                    .write(toFile: edited, atomically: true, encoding: .utf8)
                #expect(try await shop.gallra("ledger", "verify", edited).status == 65)
                #expect(try await shop.gallra("ledger", "verify", ledger, "--expect-head", head).status == 0)
                let again = try await shop.gallra("ledger", "replay", environment: environment)
                #expect(again.status == 0 && again.stdout.contains("nothing to replay"), "\(again.stdout)")
                try await Harness.psql("DROP DATABASE IF EXISTS \(shop.database)_purged WITH (FORCE)")
            } catch {
                _ = try? await Harness.psql("DROP DATABASE IF EXISTS \(shop.database)_purged WITH (FORCE)")
                throw error
            }
        }
    }
}
