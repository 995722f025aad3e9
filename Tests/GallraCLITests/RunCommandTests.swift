import Foundation
import Testing

/// The customers `inactive-customers` expires at the demo's instant, by hand: not seen for a year (a null
/// last_seen_at never expires, docs/policy-language.md), not under legal hold.
let expiringCustomersSQL = """
    SELECT id FROM shop.customer
    WHERE last_seen_at < \(DemoShop.asOfSQL) - interval '1 year' AND legal_hold IS NOT TRUE
    """

/// The policies of a run or plan report, by name.
private func policies(_ object: [String: Any]) throws -> [String: [String: Any]] {
    let report = try #require(object["report"] as? [String: Any], "no report in \(object)")
    let list = try #require(report["policies"] as? [[String: Any]])
    return Dictionary(uniqueKeysWithValues: list.map { ($0["name"] as? String ?? "?", $0) })
}

/// A policy report's rows per table: table -> (deleted, anonymized, retained).
private func tables(_ policy: [String: Any]) -> [String: [Int]] {
    var result: [String: [Int]] = [:]
    for table in policy["tables"] as? [[String: Any]] ?? [] {
        result[table["table"] as? String ?? "?"] = ["deleted", "anonymized", "retained"].map { table[$0] as? Int ?? -1 }
    }
    return result
}

@Suite("gallra run --once and gallra plan")
struct RunCommandTests {
    /// `--as-of` reads ISO 8601 (UTC unless an offset is given) and refuses anything else before connecting.
    @Test func anInstantThatIsNotISO8601IsRefusedWithAnExample() async throws {
        for text in ["29.11.2026", "2026-02-30", "2026-11-29T25:00", "yesterday"] {
            let result = try await gallra("plan", "--as-of", text)
            #expect(result.status == 64, "\(text)")
            #expect(result.stderr.contains("--as-of \(text): not a timestamp; write it as ISO 8601"), "\(text)")
        }
    }

    @Test func thePlanChangesNothingAndNamesWhatTheRunThenDoes() async throws {
        try await DemoShop.with(customers: 1500) { shop in
            let expiring = try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due")
            let before = try await shop.checksums()

            let plan = try await shop.gallra("plan", "--as-of", DemoShop.asOf, "--format", "json")
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(try await shop.checksums() == before, "the plan changed nothing")
            let planned = try policies(try jsonObject(plan))
            #expect(
                Set(planned.keys)
                    == ["erasure-requests", "inactive-customers", "former-employees", "revoked-newsletter-consent"])
            // The on-request policy has no request to act on.
            #expect(planned["erasure-requests"]?["expiring"] as? Int == 0)
            let inactive = try #require(planned["inactive-customers"])
            #expect("\(inactive["expiring"] as? Int ?? -1)" == expiring, "the hand-written count of due customers")
            #expect(inactive["processed"] as? Int == inactive["expiring"] as? Int)
            #expect((planned["former-employees"]?["expiring"] as? Int ?? 0) > 0)
            #expect(planned["revoked-newsletter-consent"]?["state"] as? String == "draft")
            // The draft expires by gallra's consent registry, into which the shop's consent table was moved: the
            // customers who withdrew consent 30 days or more before the run, counted here in the shop's table.
            let withdrawn = try await shop.psql(
                """
                SELECT count(*) FILTER (WHERE NOT c.legal_hold) || ' ' || count(*) FILTER (WHERE c.legal_hold)
                FROM shop.newsletter_consent AS n JOIN shop.customer AS c ON c.id = n.customer_id
                WHERE n.revoked_at <= \(DemoShop.asOfSQL) - interval '30 days'
                """)
            let consent = try #require(planned["revoked-newsletter-consent"])
            #expect((consent["expiring"] as? Int ?? 0) > 0)
            #expect(
                "\(consent["expiring"] as? Int ?? -1) \(consent["exempted"] as? Int ?? -1)" == withdrawn,
                "subjects due and exempted, counted in shop.newsletter_consent")

            let live = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, "--format", "json", environment: shop.keyEnvironment)
            #expect(live.status == 0, "\(live.stdout) \(live.stderr)")
            let done = try policies(try jsonObject(live))
            for name in ["inactive-customers", "former-employees"] {
                let dry = try #require(planned[name])
                let run = try #require(done[name])
                #expect(run["expiring"] as? Int == dry["expiring"] as? Int, "\(name): subjects due")
                #expect(run["processed"] as? Int == dry["processed"] as? Int, "\(name): subjects processed")
                #expect(run["exempted"] as? Int == dry["exempted"] as? Int, "\(name): subjects exempted")
                let dryTables = tables(dry)
                let liveTables = tables(run)
                #expect(Set(dryTables.keys) == Set(liveTables.keys))
                // Shared rows (addresses) included: each is acted on or retained once, whatever the batches.
                for (table, wouldDo) in dryTables {
                    let did = liveTables[table] ?? []
                    #expect(did == wouldDo, "\(name) \(table): live \(did), planned \(wouldDo)")
                }
            }
            #expect(done["revoked-newsletter-consent"] == nil, "a draft is left out of a live run")
            #expect(try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due") == "0")
            #expect(
                try await shop.psql("SELECT count(*) FROM gallra.audit_subject")
                    == "\((done["inactive-customers"]?["processed"] as? Int ?? 0) + (done["former-employees"]?["processed"] as? Int ?? 0))"
            )
            #expect(try await shop.gallra("audit", "verify").status == 0)

            let again = try await shop.gallra("plan", "--as-of", DemoShop.asOf, "--format", "json")
            #expect(again.status == 0, "\(again.stderr)")
            let replanned = try policies(try jsonObject(again))
            for name in ["inactive-customers", "former-employees"] {
                #expect(replanned[name]?["expiring"] as? Int == 0, "\(name) converged")
            }
            let second = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, "--format", "json", environment: shop.keyEnvironment)
            #expect(second.status == 0)
            for (name, policy) in try policies(try jsonObject(second)) where name != "revoked-newsletter-consent" {
                #expect(policy["processed"] as? Int == 0, "\(name): a second run touches nothing")
            }
        }
    }

    @Test func aDryRunShowsTheValidatorsWarningsAsThePlanDoes() async throws {
        try await DemoShop.with(customers: 100) { shop in
            let plan = try await shop.gallra("plan", "--as-of", DemoShop.asOf)
            #expect(plan.status == 0, "\(plan.stderr)")
            let dryRun = try await shop.gallra("run", "--once", "--dry-run", "--as-of", DemoShop.asOf)
            #expect(dryRun.status == 0, "\(dryRun.stderr)")
            let warnings = { (text: String) in text.split(separator: "\n").filter { $0.hasPrefix("  warning: ") } }
            #expect(warnings(plan.stdout).contains { $0.hasPrefix("  warning: no index on shop.newsletter_log") })
            #expect(warnings(dryRun.stdout) == warnings(plan.stdout))
            // A live run's report leaves them to `validate` and `plan`.
            let live = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, environment: shop.keyEnvironment)
            #expect(live.status == 0, "\(live.stderr)")
            #expect(warnings(live.stdout).isEmpty)
        }
    }

    @Test func aLongRunOffATerminalPrintsAPlainProgressLineEveryTenSeconds() async throws {
        try await DemoShop.with(customers: 300) { shop in
            try await shop.applyEdited(
                "inactive-customers", [("batch_size: 500,", "batch_size: 5, pause: 1500ms,")])
            let due = try #require(Int(try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due")))
            try #require(due >= 40, "enough batches for a run of more than 10 s")
            // stdout and stderr are pipes here, as when the run's output goes to a file or the journal.
            let result = try await shop.gallra(
                "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf,
                environment: shop.keyEnvironment)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.seconds > 10)
            let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("progress: ") }
            #expect(!lines.isEmpty, "stderr: \(result.stderr)")
            #expect(lines.count <= Int(result.seconds / 10), "at most one line every 10 s")
            // Ten seconds in, more than three batches are done: the line has its estimate.
            let pattern = try Regex(
                "progress: inactive-customers \\d+/\(due) subjects, \\d+ rows/s, \\d\\d:\\d\\d left")
            for line in lines { #expect(line.wholeMatch(of: pattern) != nil, "\(line)") }
            #expect(!result.stderr.contains("\u{1B}"), "no terminal escapes")
            #expect(result.stdout.contains("\(due) processed"))
        }
    }

    @Test func liveRunsNeedAKeyAndAMigratedSchemaDryRunsDoNot() async throws {
        try await DemoShop.with(customers: 200, migrate: false, policies: false) { shop in
            let unmigrated = try await shop.gallra("run", "--once", environment: shop.keyEnvironment)
            #expect(unmigrated.status == 78, "\(unmigrated.stderr)")
            #expect(unmigrated.stderr.contains("gallra migrate"))
            #expect(try await shop.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'gallra'") == "0")

            #expect(try await shop.gallra("migrate").status == 0)
            try await shop.apply("\(shop.root)/config/policies")
            let before = try await shop.checksums()

            let keyless = try await shop.gallra("run", "--once", "--as-of", DemoShop.asOf)
            #expect(keyless.status == 78)
            #expect(keyless.stderr.contains("no audit key"))
            #expect(keyless.stderr.contains("GALLRA_AUDIT_KEY_FILE"))
            #expect(try await shop.checksums() == before)

            let short = shop.directory + "/short-key"
            try "only-31-bytes-of-secret-0123456\n".write(toFile: short, atomically: true, encoding: .utf8)
            let shortKey = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, environment: ["GALLRA_AUDIT_KEY_FILE": short])
            #expect(shortKey.status == 78)
            #expect(shortKey.stderr.contains("31 bytes, at least 32"), "\(shortKey.stderr)")
            let missing = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, environment: ["GALLRA_AUDIT_KEY_FILE": short + ".gone"])
            #expect(missing.status == 78)
            #expect(missing.stderr.contains("does not exist"))
            #expect(try await shop.checksums() == before)

            let dry = try await shop.gallra("run", "--once", "--dry-run", "--as-of", DemoShop.asOf)
            #expect(dry.status == 0, "\(dry.stderr)")
            #expect(dry.stdout.contains("dry run: nothing was changed"))
            #expect(dry.stdout.contains("inactive-customers v1"))
            #expect(try await shop.checksums() == before)
        }
    }

    @Test func theGuardRefusesALargePolicyWithTheNumbersUntilAllowLarge() async throws {
        try await DemoShop.with(customers: 600) { shop in
            try await shop.applyEdited("inactive-customers", [("max_fraction: 0.35", "max_fraction: 0.05")])
            let expiring = try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due")
            let rows = try await shop.psql("SELECT count(*) FROM shop.customer")
            let customers = "SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM shop.customer AS c"
            let before = try await shop.psql(customers)

            let refused = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, "--policy", "inactive-customers",
                environment: shop.keyEnvironment)
            #expect(refused.status == 75, "\(refused.stdout) \(refused.stderr)")
            for output in [refused.stdout, refused.stderr] {
                #expect(output.contains("\(expiring) subjects are due"), "\(output)")
                #expect(output.contains("of \(rows) rows"))
                #expect(output.contains("max_fraction 0.05"))
                #expect(output.contains("--allow-large"))
            }
            #expect(refused.stdout.contains("REFUSED"))
            #expect(try await shop.psql(customers) == before, "a refused policy touches nothing")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_subject") == "0")

            let allowed = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, "--policy", "inactive-customers", "--allow-large",
                environment: shop.keyEnvironment)
            #expect(allowed.status == 0, "\(allowed.stdout) \(allowed.stderr)")
            #expect(allowed.stderr.contains("--allow-large"), "the override is logged")
            #expect(try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due") == "0")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_subject") == expiring)
        }
    }

    @Test func anInvalidStoredPolicyDoesNotStopTheOthers() async throws {
        try await DemoShop.with(customers: 300) { shop in
            // A stored row whose digest does not match its definition: loaded as invalid.
            try await shop.psql(
                """
                INSERT INTO gallra.policy (name, version, state, definition, digest)
                VALUES ('broken', 1, 'active', '{"policy": "broken", "state": "active"}', repeat('0', 64))
                """)
            let expiring = try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due")
            #expect(Int(expiring) ?? 0 > 0)

            let plan = try await shop.gallra("plan", "--as-of", DemoShop.asOf)
            #expect(plan.status == 65)
            #expect(plan.stdout.contains("broken: INVALID"))
            #expect(plan.stdout.contains("inactive-customers v1"))

            let result = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, environment: shop.keyEnvironment)
            #expect(result.status == 65, "\(result.stdout) \(result.stderr)")
            #expect(result.stdout.contains("broken: INVALID, not run"))
            #expect(result.stderr.contains("invalid"))
            #expect(try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due") == "0")
            #expect(
                try await shop.psql("SELECT count(*) FROM gallra.audit_block WHERE policy = 'inactive-customers'")
                    != "0")

            let unknown = try await shop.gallra(
                "run", "--once", "--policy", "no-such", "--as-of", DemoShop.asOf, environment: shop.keyEnvironment)
            #expect(unknown.status == 65)
            #expect(unknown.stderr.contains("no policy no-such is stored"))
        }
    }

    @Test func anotherRunnerHoldingTheLockMeansTryAgainLater() async throws {
        try await DemoShop.with(customers: 200) { shop in
            let holder = try BackgroundProcess(
                "/usr/bin/psql",
                [
                    "\(shop.conninfo) application_name=lock_holder", "-qAtX",
                    "-c", "SELECT pg_advisory_lock(x'67616c6c72610002'::bigint)", "-c", "SELECT pg_sleep(60)",
                ],
                output: shop.directory + "/holder.log")
            defer { holder.kill() }
            try await waitFor("the other session holds the runner lock", shop) {
                """
                SELECT count(*) = 1 FROM pg_locks JOIN pg_stat_activity USING (pid)
                WHERE locktype = 'advisory' AND granted AND application_name = 'lock_holder'
                  AND classid = x'67616c6c'::int AND objid = x'72610002'::int
                """
            }
            let before = try await shop.checksums()
            let busy = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, environment: shop.keyEnvironment)
            #expect(busy.status == 75, "\(busy.stderr)")
            #expect(busy.stderr.contains("another gallra is running policies on this database"))
            #expect(try await shop.checksums() == before)
            // A dry run takes no lock.
            #expect(try await shop.gallra("plan", "--as-of", DemoShop.asOf).status == 0)

            // The other session ends (a killed psql's backend would sleep on until pg_sleep returns).
            try await shop.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lock_holder'")
            _ = await holder.wait()
            try await waitFor("the lock is released", shop) {
                "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'lock_holder'"
            }
            let free = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, environment: shop.keyEnvironment)
            #expect(free.status == 0, "\(free.stderr)")
        }
    }

    @Test func aRerunStartedRightAfterAKillDashNineWaitsForTheDeadRunsLock() async throws {
        try await DemoShop.with(customers: 1000) { shop in
            try await shop.applyEdited("inactive-customers", [("batch_size: 500", "batch_size: 20")])
            // The killed run's server process is in the middle of a 30 s statement, holding the runner lock: it
            // must notice its client is gone and let go within the rerun's patience (5 s).
            try await shop.psql(
                """
                CREATE FUNCTION public.slow_for_the_victim() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF current_setting('application_name') = 'gallra_victim' THEN PERFORM pg_sleep(30); END IF;
                    RETURN NULL;
                END $$;
                CREATE TRIGGER slow AFTER DELETE ON shop.wishlist_item
                    FOR EACH STATEMENT EXECUTE FUNCTION public.slow_for_the_victim();
                """)
            for round in 1...3 {
                let victim = try BackgroundProcess(
                    Harness.gallraPath,
                    [
                        "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf, "--database",
                        "\(shop.conninfo) application_name=gallra_victim",
                    ],
                    environment: shop.keyEnvironment, output: "\(shop.directory)/victim-\(round).log")
                try await waitFor("the run is inside a batch's statement", shop) {
                    """
                    SELECT count(*) = 1 FROM pg_stat_activity
                    WHERE application_name = 'gallra_victim' AND wait_event = 'PgSleep' AND backend_xid IS NOT NULL
                    """
                }
                let xid = try await shop.psql(
                    "SELECT backend_xid FROM pg_stat_activity WHERE application_name = 'gallra_victim'")
                victim.kill()
                _ = await victim.wait()
                let rerun = try await shop.gallra(
                    "run", "--once", "--policy", "former-employees", "--as-of", DemoShop.asOf,
                    environment: shop.keyEnvironment)
                #expect(rerun.status == 0, "round \(round): \(rerun.stderr)")
                // The batch the kill interrupted rolled back whole.
                #expect(try await shop.psql("SELECT pg_xact_status('\(xid)'::xid8)") == "aborted", "round \(round)")
            }
        }
    }

    @Test func aStoppedRunFreesItsBatchsLocksWithinSeconds() async throws {
        try await DemoShop.with(customers: 1000) { shop in
            try await shop.applyEdited("inactive-customers", [("batch_size: 500", "batch_size: 20")])
            // A statement of the batch lasts 2 s, so the run can be stopped inside it; its server process then
            // waits idle in the transaction, holding the batch's row locks, for a client that does not answer.
            try await shop.psql(
                """
                CREATE FUNCTION public.slow_for_the_victim() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF current_setting('application_name') = 'gallra_victim' THEN PERFORM pg_sleep(2); END IF;
                    RETURN NULL;
                END $$;
                CREATE TRIGGER slow AFTER DELETE ON shop.wishlist_item
                    FOR EACH STATEMENT EXECUTE FUNCTION public.slow_for_the_victim();
                """)
            let victim = try BackgroundProcess(
                Harness.gallraPath,
                [
                    "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf, "--database",
                    "\(shop.conninfo) application_name=gallra_victim",
                ],
                environment: shop.keyEnvironment, output: "\(shop.directory)/victim.log")
            defer { victim.kill() }
            try await waitFor("the run is inside a batch's statement", shop) {
                """
                SELECT count(*) = 1 FROM pg_stat_activity
                WHERE application_name = 'gallra_victim' AND wait_event = 'PgSleep' AND backend_xid IS NOT NULL
                """
            }
            let xid = try await shop.psql(
                "SELECT backend_xid FROM pg_stat_activity WHERE application_name = 'gallra_victim'")
            victim.kill(SIGSTOP)
            let stopped = ContinuousClock.now
            try await waitFor("the stopped run's session is idle in its transaction", shop) {
                "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'gallra_victim' "
                    + "AND state = 'idle in transaction'"
            }
            // The shop's update of every customer meets the batch's locks...
            let update = "UPDATE shop.customer SET email = email"
            let blocked = try await run(
                "/usr/bin/psql", [shop.conninfo, "-qAtX", "-c", "SET lock_timeout = '1s'", "-c", update])
            #expect(blocked.status != 0 && blocked.stderr.contains("lock timeout"), "\(blocked.stderr)")
            // ...and gets them once the server has ended the stalled session (10 s by default).
            let waited = try await run(
                "/usr/bin/psql",
                [shop.conninfo, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", "SET lock_timeout = '30s'", "-c", update])
            #expect(waited.status == 0, "\(waited.stderr)")
            let freedAfter = ContinuousClock.now - stopped
            #expect(freedAfter < .seconds(30), "locks freed after \(freedAfter)")
            #expect(freedAfter > .seconds(5), "locks freed after \(freedAfter): were they held at all?")
            #expect(try await shop.psql("SELECT pg_xact_status('\(xid)'::xid8)") == "aborted")
            #expect(
                try await shop.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gallra_victim'")
                    == "0")
            victim.kill(SIGCONT)
            victim.kill()
            _ = await victim.wait()
        }
    }

    @Test func aLockedSubjectIsSkippedAndProcessedByALaterRun() async throws {
        try await DemoShop.with(customers: 600) { shop in
            // A due customer in the middle of the key order, with orders and a wishlist.
            let keys = try await shop.psql("\(expiringCustomersSQL) ORDER BY id").split(separator: "\n").map {
                String($0)
            }
            try #require(keys.count > 20)
            let locked = keys[keys.count / 2]
            let holder = try BackgroundProcess(
                "/usr/bin/psql",
                [
                    "\(shop.conninfo) application_name=row_holder", "-qAtX", "-c", "BEGIN",
                    "-c", "SELECT id FROM shop.customer WHERE id = \(locked) FOR UPDATE", "-c", "SELECT pg_sleep(60)",
                ],
                output: shop.directory + "/holder.log")
            defer { holder.kill() }
            try await waitFor("the other session holds the row", shop) {
                "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'row_holder' AND wait_event = 'PgSleep'"
            }
            let row = "SELECT md5(c::text) FROM shop.customer AS c WHERE id = \(locked)"
            let original = try await shop.psql(row)

            let first = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, "--policy", "inactive-customers", "--format", "json",
                environment: shop.keyEnvironment)
            let report = try #require(try policies(try jsonObject(first))["inactive-customers"])
            // The locked subject is not picked (SKIP LOCKED) and no batch fails; the run says it is still due and
            // ends partial: exit 75, run again later.
            #expect(first.status == 75, "\(first.stdout) \(first.stderr)")
            #expect(report["expiring"] as? Int == keys.count)
            #expect(report["processed"] as? Int == keys.count - 1)
            #expect(report["still_due"] as? Int == 1)
            #expect((report["skipped_batches"] as? [Any])?.isEmpty == true)
            #expect((try jsonObject(first)["report"] as? [String: Any])?["outcome"] as? String == "partial")
            #expect(try await shop.psql(row) == original, "the locked customer is untouched")
            #expect(try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due") == "1")
            let digest = shop.digest(customer: Int(locked) ?? 0)
            let records = "SELECT count(*) FROM gallra.audit_subject WHERE subject_digest = '\(digest)'"
            #expect(try await shop.psql(records) == "0")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_subject") == "\(keys.count - 1)")

            // The other session ends (a killed psql's backend would sleep on until pg_sleep returns).
            try await shop.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'row_holder'")
            _ = await holder.wait()
            try await waitFor("the row is released", shop) {
                "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'row_holder'"
            }
            let later = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, "--policy", "inactive-customers", "--format", "json",
                environment: shop.keyEnvironment)
            #expect(later.status == 0, "\(later.stderr)")
            #expect(try policies(try jsonObject(later))["inactive-customers"]?["processed"] as? Int == 1)
            #expect(try policies(try jsonObject(later))["inactive-customers"]?["still_due"] as? Int == 0)
            #expect(try await shop.psql("SELECT count(*) FROM shop.customer WHERE id = \(locked)") == "0")
            #expect(try await shop.psql(records) == "1")
            #expect(try await shop.gallra("audit", "verify").status == 0)
        }
    }
}

extension RunCommandTests {
    @Test func twoRunsStartedAtOnceNeverProcessASubjectTwice() async throws {
        try await DemoShop.with(customers: 1500) { shop in
            // Small batches: the first run is still working when the second asks for the runner lock.
            try await shop.applyEdited("inactive-customers", [("batch_size: 500", "batch_size: 10")])
            let due = try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due")
            let runs = try (0..<2).map { index in
                try BackgroundProcess(
                    Harness.gallraPath,
                    [
                        "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf, "--database",
                        shop.conninfo,
                    ],
                    environment: shop.keyEnvironment, output: "\(shop.directory)/run-\(index).log")
            }
            var statuses: [Int32] = []
            for run in runs { statuses.append(await run.wait().status) }
            let logs = (0..<2).map {
                (try? String(contentsOfFile: "\(shop.directory)/run-\($0).log", encoding: .utf8)) ?? ""
            }
            #expect(statuses.sorted() == [0, 75], "\(logs)")
            #expect(logs.contains { $0.contains("another gallra is running policies on this database") })
            #expect(try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due") == "0")
            #expect(
                try await shop.psql(
                    "SELECT count(*) || ' ' || count(DISTINCT subject_digest) FROM gallra.audit_subject")
                    == "\(due) \(due)")
            #expect(try await shop.psql("SELECT count(DISTINCT run) FROM gallra.audit_block") == "1")
        }
    }
}

extension RunCommandTests {
    @Test func ctrlCStopsARunBetweenBatchesWithItsReport() async throws {
        try await DemoShop.with(customers: 1500) { shop in
            // Batches of 10 a second apart: the signal comes while the run has most of its work left.
            try await shop.applyEdited(
                "inactive-customers",
                [("batch_size: 500", "batch_size: 10"), ("max_fraction: 0.35 }", "max_fraction: 0.35, pause: 1s }")])
            let due = Int(try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due")) ?? 0
            let log = "\(shop.directory)/run.log"
            let run = try BackgroundProcess(
                Harness.gallraPath,
                [
                    "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf, "--database",
                    shop.conninfo,
                ],
                environment: shop.keyEnvironment, output: log)
            try await waitFor("two batches are committed", shop) { "SELECT count(*) >= 2 FROM gallra.audit_block" }
            run.kill(SIGINT)
            let exit = await run.wait()
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(!exit.signalled && exit.status == 75, "\(exit) \(output)")
            #expect(output.contains("stopping; the batch in flight is rolled back"), "\(output)")
            #expect(output.contains(": interrupted"), "\(output)")

            // The run is closed as interrupted, with what its committed batches did, and they are audited.
            let closed = try await shop.psql(
                "SELECT outcome || ' ' || (finished_at IS NOT NULL) FROM gallra.run WHERE mode = 'live'")
            #expect(closed == "interrupted true")
            let records = Int(try await shop.psql("SELECT count(*) FROM gallra.audit_subject")) ?? 0
            let left = Int(try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due")) ?? 0
            #expect(records >= 20 && records < due, "audited \(records) of \(due)")
            #expect(left == due - records)
            #expect(output.contains("\(records) processed in"), "\(output)")
            #expect(try await shop.gallra("audit", "verify").status == 0)

            // Running again (with the shipped limits) goes on where it stopped.
            try await shop.apply("\(shop.root)/config/policies")
            let rest = try await shop.gallra(
                "run", "--once", "--policy", "inactive-customers", "--as-of", DemoShop.asOf,
                environment: shop.keyEnvironment)
            #expect(rest.status == 0, "\(rest.stdout) \(rest.stderr)")
            #expect(try await shop.psql("SELECT count(*) FROM (\(expiringCustomersSQL)) AS due") == "0")
            #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_subject") == "\(due)")
        }
    }
}

/// Polls `condition` (a query returning a boolean) until it holds, for up to `seconds`.
func waitFor(
    _ what: String, _ shop: DemoShop, seconds: Double = 20, _ condition: () -> String
) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await shop.psql(condition()) == "t" { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("timed out waiting until \(what)")
    throw HarnessError.psqlFailed

}

extension RunCommandTests {
    /// Orders deleted where nothing references them any more, anonymized where order lines (which the policy
    /// does not name) still do: the plan's counts are the run's, deleted and anonymized apart, and explain says
    /// so for one customer before the run.
    @Test func ordersAreDeletedWherePossibleAndAnonymizedOtherwise() async throws {
        try await DemoShop.with(customers: 120) { shop in
            // Half the orders lose their lines: nothing references them any more.
            try await shop.psql("DELETE FROM shop.order_line WHERE order_id % 2 = 0")
            try await shop.applyEdited(
                "inactive-customers",
                [("  - table: shop.order\n    anonymize:", "  - table: shop.order\n    delete: true\n    anonymize:")])
            let expected = try await shop.psql(
                """
                SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT FROM shop.order_line AS l WHERE l.order_id = o.id))
                    || ' ' || count(*) FILTER (WHERE EXISTS (SELECT FROM shop.order_line AS l WHERE l.order_id = o.id))
                FROM shop."order" AS o WHERE o.customer_id IN (\(expiringCustomersSQL))
                """)
            let customer = try await shop.psql(
                """
                SELECT o.customer_id FROM shop."order" AS o WHERE o.customer_id IN (\(expiringCustomersSQL))
                GROUP BY 1 HAVING count(*) FILTER (WHERE o.id % 2 = 0) > 0 AND count(*) FILTER (WHERE o.id % 2 = 1) > 0
                ORDER BY 1 LIMIT 1
                """)
            try #require(!customer.isEmpty, "no due customer with orders of both kinds")
            let explained = try await shop.gallra(
                "explain", "--subject", "shop.customer:\(customer)", "--as-of", DemoShop.asOf)
            #expect(explained.status == 0, "\(explained.stderr)")
            let json = try jsonObject(
                try await shop.gallra(
                    "explain", "--subject", "shop.customer:\(customer)", "--as-of", DemoShop.asOf, "--format", "json"))
            let underPolicy = (json["policies"] as? [[String: Any]])?.first {
                $0["policy"] as? String == "inactive-customers"
            }
            let steps = (underPolicy?["steps"] as? [[String: Any]]) ?? []
            #expect(!steps.isEmpty)
            // Every step has every key: null where the action has no anonymized part.
            #expect(steps.allSatisfy { $0.keys.contains("anonymized") })
            #expect(
                steps.first { $0["table"] as? String == "shop.order" }?["action"] as? String == "delete_or_anonymize")
            #expect(
                explained.stdout.contains(
                    #/data\[5\] shop.order: delete [1-9][0-9]* rows?, anonymize [1-9][0-9]* \(still referenced\)/#),
                "\(explained.stdout)")

            let plan = try await shop.gallra("plan", "--as-of", DemoShop.asOf, "--format", "json")
            #expect(plan.status == 0, "\(plan.stderr)")
            let planned = try #require(try policies(try jsonObject(plan))["inactive-customers"])
            let live = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, "--format", "json", environment: shop.keyEnvironment)
            #expect(live.status == 0, "\(live.stdout) \(live.stderr)")
            let done = try #require(try policies(try jsonObject(live))["inactive-customers"])
            let orders = tables(done)["shop.order"] ?? []
            #expect(orders.prefix(2).map(String.init).joined(separator: " ") == expected, "orders deleted, anonymized")
            #expect(tables(planned) == tables(done))
            let step = (done["steps"] as? [[String: Any]] ?? []).first { $0["table"] as? String == "shop.order" }
            #expect(step?["action"] as? String == "delete_or_anonymize")
            #expect(step?["anonymized"] as? Int == orders.dropFirst().first)
            // Lines still reference every order left; none is attached to an erased customer.
            #expect(
                try await shop.psql(
                    #"SELECT count(*) FROM shop."order" AS o WHERE NOT EXISTS (SELECT FROM shop.order_line AS l WHERE l.order_id = o.id) AND o.customer_id IS NULL"#
                ) == "0")
        }
    }
}
