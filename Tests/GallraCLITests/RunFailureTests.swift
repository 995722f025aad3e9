import Foundation
import Testing

/// Routine database failures end `gallra run --once` with the sysexits status an operator expects and a message
/// that says what to do, never as an internal error; a run the server ends reports what it did and is recorded.
@Suite("gallra run --once on database failures")
struct RunFailureTests {
    @Test func aTerminatedSessionEndsTheRunWithItsReportAndItsOutcomeRecorded() async throws {
        try await DemoShop.with(customers: 1500) { shop in
            // Batches of 10 a second apart: the session is terminated while the run has most of its work left.
            try await shop.applyEdited(
                "inactive-customers",
                [("batch_size: 500", "batch_size: 10"), ("max_fraction: 0.35 }", "max_fraction: 0.35, pause: 1s }")])
            let due = Int(try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due")) ?? 0
            let log = "\(shop.directory)/run.log"
            let run = try BackgroundProcess(
                Harness.gallraPath,
                [
                    "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf, "--format", "json",
                    "--database", shop.conninfo,
                ],
                environment: shop.keyEnvironment, output: log)
            try await waitFor("two batches are committed", shop) { "SELECT count(*) >= 2 FROM gallra.audit_block" }
            let terminated = try await shop.psql(
                """
                SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend') AS t
                """)
            #expect(terminated == "1")
            let exit = await run.wait()
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(!exit.signalled && exit.status == 69, "\(exit) \(output)")
            #expect(!output.contains("unexpected"), "\(output)")
            #expect(output.contains("run again once the server is back"), "\(output)")

            // The report on stdout (between the log lines and the message on stderr) shows the committed batches.
            let start = try #require(output.firstRange(of: "\n{\n"), "\(output)")
            let end = try #require(output[start.upperBound...].firstRange(of: "\n}\n"), "\(output)")
            let json = String(output[start.lowerBound..<end.upperBound])
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(output)")
            let report = try #require(object["report"] as? [String: Any])
            #expect(report["outcome"] as? String == "interrupted")
            let policy = try #require((report["policies"] as? [[String: Any]])?.first)
            let records = Int(try await shop.psql("SELECT count(*) FROM gallra.audit_subject")) ?? 0
            #expect(records >= 20 && records < due, "audited \(records) of \(due)")
            #expect(policy["processed"] as? Int == records)
            #expect((policy["batches"] as? Int ?? 0) >= 2)
            #expect((policy["failure"] as? String)?.contains("57P01") == true, "\(policy)")

            // Recorded at once, on a fresh connection: not left running until the next run.
            let closed = try await shop.psql(
                "SELECT outcome || ' ' || (finished_at IS NOT NULL) || ' ' || (counts IS NOT NULL) FROM gallra.run")
            #expect(closed == "interrupted true true")
            #expect(try await shop.gallra("audit", "verify").status == 0)

            // Running again (with the shipped limits) goes on where it stopped.
            try await shop.apply("\(shop.root)/config/policies")
            let rest = try await shop.gallra(
                "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf,
                environment: shop.keyEnvironment)
            #expect(rest.status == 0, "\(rest.stdout) \(rest.stderr)")
            #expect(try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due") == "0")
        }
    }

    @Test func aPrivilegeRevokedMidRunExitsNoPermissionNamingTheTable() async throws {
        try await DemoShop.with(customers: 1500) { shop in
            // The validator refuses a policy whose role lacks a privilege before the run; revoked during the
            // run, the privilege fails the policy at its next batch.
            let role = "gallra_runner_\(UUID().uuidString.prefix(8).lowercased())"
            try await Harness.psql("CREATE ROLE \(role) LOGIN")
            try await shop.psql(
                """
                GRANT USAGE ON SCHEMA shop, gallra TO \(role);
                GRANT ALL ON ALL TABLES IN SCHEMA shop, gallra TO \(role);
                GRANT ALL ON ALL SEQUENCES IN SCHEMA shop, gallra TO \(role);
                GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA gallra TO \(role)
                """)
            try await shop.applyEdited(
                "inactive-customers",
                [("batch_size: 500", "batch_size: 10"), ("max_fraction: 0.35 }", "max_fraction: 0.35, pause: 1s }")])
            let out = "\(shop.directory)/run.out"
            let run = try BackgroundProcess(
                "/bin/sh",
                [
                    "-c", "exec \"$0\" \"$@\" 2>\(shop.directory)/run.err", Harness.gallraPath, "run", "--once",
                    "--policy", "inactive-customers", "--as-of", DemoShop.asOf, "--database",
                    "\(shop.conninfo) user=\(role)",
                ],
                environment: shop.keyEnvironment, output: out)
            var started: (any Error)?
            do {
                try await waitFor("two batches are committed", shop) {
                    "SELECT count(*) >= 2 FROM gallra.audit_block"
                }
                try await shop.psql("REVOKE DELETE ON shop.wishlist_item FROM \(role)")
            } catch {
                started = error
                run.kill()
            }
            let exit = await run.wait()
            let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            let stderr = (try? String(contentsOfFile: "\(shop.directory)/run.err", encoding: .utf8)) ?? ""
            try await shop.psql("DROP OWNED BY \(role)")
            try await Harness.psql("DROP ROLE \(role)")
            try #require(started == nil, "\(stdout) \(stderr)")
            #expect(!exit.signalled && exit.status == 77, "\(exit) \(stdout) \(stderr)")
            #expect(stderr.contains("42501"), "\(stderr)")
            #expect(stderr.contains("wishlist_item"), "\(stderr)")
            #expect(stderr.contains("Grant the role gallra connects as"), "\(stderr)")
            #expect(!stderr.contains("unexpected"), "\(stderr)")
            #expect(stdout.contains(": failed"), "\(stdout)")
            #expect(stdout.contains("FAILED: PostgreSQL ERROR 42501"), "\(stdout)")
            let records = Int(try await shop.psql("SELECT count(*) FROM gallra.audit_subject")) ?? 0
            #expect(records >= 20, "\(records)")
            #expect(stdout.contains("\(records) processed in"), "\(stdout)")
            #expect(
                try await shop.psql("SELECT outcome || ' ' || (finished_at IS NOT NULL) FROM gallra.run")
                    == "failed true")
        }
    }

    @Test func aPrivilegeMissingBeforeTheRunExitsNoPermissionWithTheGrant() async throws {
        try await DemoShop.with(customers: 200) { shop in
            let role = "gallra_runner_\(UUID().uuidString.prefix(8).lowercased())"
            try await Harness.psql("CREATE ROLE \(role) LOGIN")
            try await shop.psql(
                """
                GRANT USAGE ON SCHEMA shop, gallra TO \(role);
                GRANT ALL ON ALL TABLES IN SCHEMA shop, gallra TO \(role);
                GRANT ALL ON ALL SEQUENCES IN SCHEMA shop, gallra TO \(role);
                GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA gallra TO \(role);
                REVOKE DELETE ON shop.wishlist_item FROM \(role)
                """)
            let missing = try await run(
                Harness.gallraPath,
                [
                    "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf, "--database",
                    "\(shop.conninfo) user=\(role)",
                ], environment: shop.keyEnvironment)
            // A policy the role may not carry out is a GRANT away from running: 77, with the GRANT to run.
            let stored = try await shop.psql("SELECT count(*) FROM gallra.audit_subject")
            #expect(missing.status == 77, "\(missing.stdout) \(missing.stderr)")
            #expect(missing.stdout.contains("GRANT DELETE ON shop.wishlist_item TO \(role)"), "\(missing.stdout)")
            #expect(missing.stderr.contains("lacks privileges"), "\(missing.stderr)")
            #expect(stored == "0")

            // With a policy that is wrong in itself among those not run, the data error comes first: 65.
            try await shop.psql("ALTER TABLE shop.newsletter_log RENAME COLUMN customer_ref TO customer_reference")
            let both = try await run(
                Harness.gallraPath,
                ["run", "--once", "--as-of", DemoShop.asOf, "--database", "\(shop.conninfo) user=\(role)"],
                environment: shop.keyEnvironment)
            try await shop.psql("DROP OWNED BY \(role)")
            try await Harness.psql("DROP ROLE \(role)")
            #expect(both.status == 65, "\(both.stdout) \(both.stderr)")
        }
    }

    @Test func aStatementTimeoutIsATemporaryFailure() async throws {
        try await DemoShop.with(customers: 200) { shop in
            let result = try await shop.gallra(
                "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf,
                environment: shop.keyEnvironment.merging(["PGOPTIONS": "-c statement_timeout=1"]) { $1 })
            #expect(result.status == 75, "\(result.stdout) \(result.stderr)")
            #expect(!result.stderr.contains("unexpected"), "\(result.stderr)")
            #expect(result.stderr.contains("run again later"), "\(result.stderr)")
        }
    }

    @Test func aReadOnlySessionRefusesALiveRunTemporarilyAndPlansStillWork() async throws {
        try await DemoShop.with(customers: 50) { shop in
            let readOnly = ["PGOPTIONS": "-c default_transaction_read_only=on"]
            let live = try await shop.gallra(
                "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf,
                environment: shop.keyEnvironment.merging(readOnly) { $1 })
            #expect(live.status == 75, "\(live.stdout) \(live.stderr)")
            #expect(live.stderr.contains("25006"), "\(live.stderr)")
            #expect(live.stderr.contains("run this on the primary"), "\(live.stderr)")
            #expect(!live.stderr.contains("unexpected"), "\(live.stderr)")
            let plan = try await shop.gallra(
                "plan", "--policy", "inactive-customers", "--as-of", DemoShop.asOf, environment: readOnly)
            #expect(plan.status == 0, "\(plan.stdout) \(plan.stderr)")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.run WHERE mode = 'live'") == "0")
        }
    }
}
