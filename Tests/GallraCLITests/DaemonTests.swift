import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `gallra run` as the service: the built binary, a recording NOTIFY_SOCKET, signals, the test server.
@Suite("gallra run (the service)", .serialized)
struct DaemonTests {
    @Test func readyWatchdogReloadAndStop() async throws {
        try await withExpiredCustomers(count: 3) { _, conninfo, keyFile in
            let daemon = try DaemonProcess(
                database: conninfo, keyFile: keyFile, environment: ["WATCHDOG_USEC": "1000000"])
            let ready = try await daemon.notify.wait(for: "READY=1")
            #expect(
                daemon.notify.all[ready].assignments.contains { $0.hasPrefix("STATUS=idle; next: stale-customers at") })

            // WATCHDOG=1 at half of WATCHDOG_USEC: about 6 in 3 s.
            let before = daemon.notify.count("WATCHDOG=1")
            try await Task.sleep(for: .seconds(3))
            let pings = daemon.notify.count("WATCHDOG=1") - before
            #expect(pings >= 4 && pings <= 8, "\(pings) watchdog pings in 3 s")
            #expect(
                daemon.notify.all.filter { $0.assignments.contains("WATCHDOG=1") }.allSatisfy {
                    $0.senderPID == daemon.pid
                })

            // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
            let mark = daemon.notify.all.count
            daemon.signal(SIGHUP)
            let reloading = try await daemon.notify.wait(for: "RELOADING=1", after: mark)
            #expect(daemon.notify.all[reloading].assignments.contains { $0.hasPrefix("MONOTONIC_USEC=") })
            try await daemon.notify.wait(for: "READY=1", after: reloading + 1)

            daemon.signal(SIGTERM)
            try await daemon.notify.wait(for: "STOPPING=1", after: mark)
            let status = try await daemon.waitForExit(within: 15)
            #expect(status == 0, "\(daemon.log)")
        }
    }

    @Test func anInvalidConfigurationOnReloadKeepsTheOldOne() async throws {
        try await withExpiredCustomers(count: 3) { _, conninfo, keyFile in
            try await Harness.withTemporaryDirectory { dir in
                let config = "\(dir)/gallra.yaml"
                try "schedule:\n  default: daily at 03:00\n".write(toFile: config, atomically: true, encoding: .utf8)
                let daemon = try DaemonProcess(
                    database: conninfo, keyFile: keyFile, arguments: ["--config", config])
                try await daemon.notify.wait(for: "READY=1")

                // The file now names an hour that does not exist: the reload says why and keeps the old settings.
                try "schedule:\n  default: daily at 25:00\n".write(toFile: config, atomically: true, encoding: .utf8)
                let mark = daemon.notify.all.count
                daemon.signal(SIGHUP)
                let reloading = try await daemon.notify.wait(for: "RELOADING=1", after: mark)
                try await daemon.notify.wait(for: "READY=1", after: reloading + 1)
                try await waitUntil("the reason is logged", within: 10) {
                    daemon.log.contains("the new configuration is invalid, the previous one stays in force")
                }
                #expect(daemon.log.contains("25"), "the log names what is wrong: \(daemon.log)")
                #expect(daemon.process.isRunning)

                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
            }
        }
    }

    @Test func aPolicyAppliedWhileItRunsIsPickedUpWithoutARestart() async throws {
        try await withExpiredCustomers(count: 3) { _, conninfo, keyFile in
            try await Harness.withTemporaryDirectory { dir in
                let daemon = try DaemonProcess(database: conninfo, keyFile: keyFile)
                try await daemon.notify.wait(for: "READY=1")
                let policy = "\(dir)/hourly.yaml"
                try """
                policy: hourly-customers
                state: active
                subject: { table: shop.customer, key: id }
                expires: { inactive_for: 5 years, activity: last_seen_at }
                schedule: every 1h
                data:
                  - { table: shop.customer, delete: true }
                """.write(toFile: policy, atomically: true, encoding: .utf8)
                let apply = try await gallra("policy", "apply", "--database", conninfo, policy)
                #expect(apply.status == 0, "\(apply.stderr)")
                try await waitUntil("the service reloads the policies", within: 15) {
                    daemon.log.contains("a policy was stored; reloading the policies")
                }
                // The next run it announces is now the new hourly policy's.
                try await daemon.notify.waitForStatus(containing: "next: hourly-customers", within: 15)
                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
            }
        }
    }

    @Test func aDatabaseThatIsDownAtStartExtendsTheStartTimeoutAndSaysSo() async throws {
        let port = try unusedPort()
        try await Harness.withTemporaryDirectory { dir in
            let keyFile = "\(dir)/audit-key"
            try "c2VjcmV0LWF1ZGl0LWtleS1mb3ItdGhlLWRhZW1vbi10ZXN0cy0xMjM0NTY3OA==\n".write(
                toFile: keyFile, atomically: true, encoding: .utf8)
            let daemon = try DaemonProcess(
                database: "host=127.0.0.1 port=\(port) user=postgres dbname=postgres connect_timeout=2",
                keyFile: keyFile)
            try await daemon.notify.wait(for: "EXTEND_TIMEOUT_USEC=", within: 15)
            try await daemon.notify.waitForStatus(containing: "database unreachable since", within: 15)
            #expect(daemon.notify.count("READY=1") == 0, "not ready while the database is unreachable")
            #expect(daemon.process.isRunning)
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
        }
    }

    @Test func triggerRunsNowAndStopInTheMiddleLeavesWholeBatches() async throws {
        try await withExpiredCustomers(count: 200, batchSize: 5, pause: "300ms") { database, conninfo, keyFile in
            let daemon = try DaemonProcess(database: conninfo, keyFile: keyFile)
            try await daemon.notify.wait(for: "READY=1")
            #expect(try await Harness.psql("SELECT count(*) FROM gallra.run", database: database) == "0")

            let trigger = try await gallra("trigger", "--database", conninfo, "--policy", "stale-customers")
            #expect(trigger.status == 0, "\(trigger.stderr)")
            #expect(trigger.stdout.contains("triggered: stale-customers"))
            try await daemon.notify.waitForStatus(containing: "purging stale-customers: 10/200 subjects", within: 20)

            let mark = daemon.notify.all.count
            daemon.signal(SIGTERM)
            try await daemon.notify.wait(for: "STOPPING=1", after: mark)
            let status = try await daemon.waitForExit(within: 15)
            #expect(status == 0, "\(daemon.log)")

            // Every batch committed whole or not at all: the customers gone are exactly those audited.
            #expect(
                try await Harness.psql("SELECT trigger || ' ' || outcome FROM gallra.run", database: database)
                    == "notify interrupted")
            let left = Int(try await Harness.psql("SELECT count(*) FROM shop.customer", database: database)) ?? -1
            let audited =
                Int(try await Harness.psql("SELECT count(*) FROM gallra.audit_subject", database: database)) ?? -1
            #expect(left - 10 + audited == 200)
            #expect(audited > 0 && audited < 200 && audited % 5 == 0)
            let verify = try await gallra("audit", "verify", "--database", conninfo)
            #expect(verify.status == 0, "\(verify.stdout)")

            // SIGUSR1 on a new service finishes the work, each subject once.
            let second = try DaemonProcess(database: conninfo, keyFile: keyFile)
            try await second.notify.wait(for: "READY=1")
            second.signal(SIGUSR1)
            try await waitUntil("the second run is done", within: 60) {
                try await Harness.psql("SELECT count(*) FROM gallra.run WHERE outcome = 'done'", database: database)
                    == "1"
            }
            #expect(try await Harness.psql("SELECT count(*) FROM shop.customer", database: database) == "10")
            #expect(
                try await Harness.psql(
                    "SELECT count(*) || ' ' || count(DISTINCT subject_digest) FROM gallra.audit_subject",
                    database: database) == "200 200")
            second.signal(SIGTERM)
            #expect(try await second.waitForExit(within: 15) == 0)
        }
    }

    @Test func twoServicesOneLeaderTheOtherTakesOver() async throws {
        try await withExpiredCustomers(count: 3) { _, conninfo, keyFile in
            let environment = ["GALLRA_DAEMON_STANDBY_RETRY": "1"]
            let first = try DaemonProcess(database: conninfo, keyFile: keyFile, environment: environment)
            try await first.notify.waitForStatus(containing: "idle; next:")
            let second = try DaemonProcess(database: conninfo, keyFile: keyFile, environment: environment)
            try await second.notify.wait(for: "READY=1")
            try await second.notify.waitForStatus(
                containing: "standby: another gallra runs policies on this database")
            #expect(second.notify.all.allSatisfy { !$0.assignments.contains { $0.hasPrefix("STATUS=idle") } })

            first.signal(SIGKILL)
            _ = try await first.waitForExit(within: 10)
            try await second.notify.waitForStatus(containing: "idle; next: stale-customers", within: 20)
            second.signal(SIGTERM)
            #expect(try await second.waitForExit(within: 15) == 0)
        }
    }

    @Test func journalEventsCarryMessageIDsAndFields() async throws {
        guard ProcessInfo.processInfo.environment["GALLRA_TEST_JOURNALD"] == "1" else {
            Issue.record("GALLRA_TEST_JOURNALD is not set: run the tests through `make test` (private journald)")
            return
        }
        try await withExpiredCustomers(count: 12, batchSize: 5) { database, conninfo, keyFile in
            let daemon = try DaemonProcess(
                database: conninfo, keyFile: keyFile, arguments: ["--log-format", "journal"])
            try await daemon.notify.wait(for: "READY=1")
            #expect(try await gallra("trigger", "--database", conninfo).status == 0)
            try await waitUntil("the run is done", within: 60) {
                try await Harness.psql("SELECT count(*) FROM gallra.run WHERE outcome = 'done'", database: database)
                    == "1"
            }
            let runID = try await Harness.psql("SELECT id FROM gallra.run", database: database)
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit(within: 15) == 0)

            _ = try await run("/usr/bin/journalctl", ["--sync"])
            let result = try await run("/usr/bin/journalctl", ["-o", "json", "GALLRA_RUN_ID=\(runID)"])
            let entries = result.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            func entry(_ messageID: String) -> [String: Any]? {
                entries.first { $0["MESSAGE_ID"] as? String == messageID }
            }
            let started = try #require(entry("1cc91e9da714472ea1cda2bfbe3802fe"), "run started")
            #expect(started["GALLRA_RUN_TRIGGER"] as? String == "notify")
            let processed = try #require(entry("64ea9f621ca1482592cdbf281586ff73"), "policy processed")
            #expect(processed["GALLRA_POLICY"] as? String == "stale-customers")
            #expect(processed["GALLRA_POLICY_VERSION"] as? String == "1")
            #expect(processed["GALLRA_SUBJECTS"] as? String == "12")
            #expect(processed["GALLRA_ROWS"] as? String == "12")
            #expect(processed["GALLRA_DRY_RUN"] as? String == "false")
            let finished = try #require(entry("8f7f4f3e7f9c45beafc589f64fabb20c"), "run finished")
            #expect(finished["GALLRA_RUN_OUTCOME"] as? String == "done")
            #expect(entry("6598745a0bca4a0a9c200b07973d9027")?["GALLRA_AUDIT_HEAD"] != nil)
            let table = entries.first { $0["GALLRA_TABLE"] as? String == "shop.customer" }
            #expect(table?["GALLRA_ACTION"] as? String == "delete")
            #expect(table?["GALLRA_ROWS"] as? String == "12")
            // The leader event and the catalog's ids.
            let catalog = try String(
                contentsOfFile: (ProcessInfo.processInfo.environment["GALLRA_SOURCE_ROOT"] ?? ".")
                    + "/systemd/gallra.catalog", encoding: .utf8)
            for id in ["1cc91e9da714472ea1cda2bfbe3802fe", "64ea9f621ca1482592cdbf281586ff73"] {
                #expect(catalog.contains("-- \(id)\nSubject: "))
            }
        }
    }
}

/// Polls `condition` every 200 ms until it holds.
func waitUntil(_ what: String, within seconds: Double, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(200))
    }
    Issue.record("\(what): not within \(seconds) s")
    throw HarnessError.timeout
}
