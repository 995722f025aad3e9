import Foundation
import GallraTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// WAL a paused standby cannot replay, well over 1 MB.
private func writeWAL(database: String) async throws {
    try await Harness.psql(
        "CREATE TABLE public.filler_\(UUID().uuidString.prefix(8).lowercased()) AS "
            + "SELECT g, repeat('x', 200) AS x FROM generate_series(1, 20000) g", database: database)
}

@Suite("Replica-lag throttle: configuration")
struct ThrottleConfigurationTests {
    @Test(arguments: [
        ("GALLRA_THROTTLE_REPLICA_LAG", "ten seconds"), ("GALLRA_THROTTLE_REPLICA_LAG", "-5s"),
        ("GALLRA_THROTTLE_REPLICA_LAG", "2h"), ("GALLRA_THROTTLE_REPLICA_LAG_BYTES", "12XB"),
        ("GALLRA_THROTTLE_REPLICA_LAG_BYTES", "lots"),
    ])
    func anInvalidBoundInTheEnvironmentIsAConfigurationError(variable: String, value: String) async throws {
        let result = try await gallra("check", environment: [variable: value])
        #expect(result.status == 78, "\(result.stderr)")
        #expect(result.stderr.contains(variable), "\(result.stderr)")
        #expect(result.stderr.contains("\"\(value)\""), "\(result.stderr)")
    }

    @Test func anInvalidBoundInTheFileNamesTheKeyAndTheFile() async throws {
        try await Harness.withTemporaryDirectory { dir in
            let config = "\(dir)/gallra.yaml"
            try "throttle:\n  replica_lag: 10s\n  replica_lag_bytes: 1.5GB\n".write(
                toFile: config, atomically: true, encoding: .utf8)
            let result = try await gallra("check", "--config", config)
            #expect(result.status == 78)
            #expect(result.stderr.contains("throttle.replica_lag_bytes"), "\(result.stderr)")
            #expect(result.stderr.contains(config), "\(result.stderr)")
        }
    }
}

/// `gallra run --once` and the service against the test server's streaming standby, its replay paused.
@Suite(
    "Replica-lag throttle: a real streaming standby", .serialized,
    .enabled(if: TestReplica.conninfo != nil, Comment(rawValue: TestReplica.skipNote)))
struct ThrottleReplicaTests {
    @Test func runOnceWaitsForAPausedStandbyAndReportsThePause() async throws {
        try await DemoShop.with(customers: 800) { shop in
            let textfile = shop.directory + "/gallra.prom"
            let environment = shop.keyEnvironment.merging([
                "GALLRA_THROTTLE_REPLICA_LAG_BYTES": "1MB", "GALLRA_METRICS_TEXTFILE": textfile,
            ]) { $1 }
            try await TestReplica.withReplayPaused {
                try await writeWAL(database: shop.database)
                async let finished = shop.gallra(
                    "run", "--once", "--as-of", DemoShop.asOf, "--format", "json", environment: environment)
                try await waitUntil("the run has started", within: 20) {
                    try await shop.psql("SELECT count(*) FROM gallra.run WHERE outcome = 'running'") == "1"
                }
                try await Task.sleep(for: .seconds(2))
                #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_block") == "0", "no batch while paused")
                #expect(try await shop.psql("SELECT count(*) FROM gallra.run WHERE outcome = 'running'") == "1")
                try await TestReplica.resume()
                let live = try await finished
                #expect(live.status == 0, "\(live.stdout) \(live.stderr)")
                #expect(live.stderr.contains("batches paused: replica \(TestReplica.name) replay "), "\(live.stderr)")
                #expect(live.stderr.contains("exceeds throttle.replica_lag_bytes 1 MB"), "\(live.stderr)")
                #expect(live.stderr.contains("batches resumed"), "\(live.stderr)")
                let report = try #require(try jsonObject(live)["report"] as? [String: Any])
                let policies = try #require(report["policies"] as? [[String: Any]])
                let throttled = policies.reduce(0.0) { $0 + ($1["throttled_seconds"] as? Double ?? 0) }
                #expect(throttled >= 2, "the pause is in the report: \(policies)")
                // ... and in the metrics: the pauses, as long as the report says.
                let samples = try await MetricsTests.parse(textfile)
                #expect((MetricsTests.values(samples, "gallra_replica_lag_pauses_total", by: [])[""] ?? 0) >= 1)
                let seconds = MetricsTests.values(samples, "gallra_replica_lag_pause_seconds_total", by: [])[""] ?? 0
                #expect(abs(seconds - throttled) < 0.01, "\(seconds) s in the metrics, \(throttled) s in the report")
                for policy in policies where policy["skipped"] == nil {
                    #expect(policy["processed"] as? Int == policy["expiring"] as? Int, "\(policy)")
                }
            }
        }
    }

    /// A SIGHUP while batches are paused: the run takes the new bounds at once, and with none it goes on while the
    /// standby is still paused.
    @Test func aReloadDuringAPauseLiftsIt() async throws {
        try await withExpiredCustomers(count: 40, batchSize: 10) { database, conninfo, keyFile in
            try await Harness.withTemporaryDirectory { dir in
                let config = "\(dir)/gallra.yaml"
                try "throttle:\n  replica_lag_bytes: 1MB\n".write(toFile: config, atomically: true, encoding: .utf8)
                let daemon = try DaemonProcess(database: conninfo, keyFile: keyFile, arguments: ["--config", config])
                try await daemon.notify.wait(for: "READY=1")

                try await TestReplica.withReplayPaused {
                    try await writeWAL(database: database)
                    #expect(try await gallra("trigger", "--database", conninfo).status == 0)
                    try await daemon.notify.waitForStatus(
                        containing: "purging stale-customers: 0/40 subjects; paused: replica \(TestReplica.name) replay"
                    )
                    try "throttle:\n  replica_lag_bytes: 0\n".write(toFile: config, atomically: true, encoding: .utf8)
                    daemon.signal(SIGHUP)
                    try await waitUntil("the run is done while the standby is still paused", within: 30) {
                        try await Harness.psql("SELECT count(*) FROM shop.customer", database: database) == "10"
                    }
                }
                #expect(
                    daemon.log.contains(
                        "reload during a run: the run's replica-lag bounds are now off; the rest of the configuration and the policies are reloaded when the run ends"
                    ), "\(daemon.log)")
                #expect(daemon.log.contains("batches resumed"), "\(daemon.log)")
                #expect(
                    try await Harness.psql("SELECT outcome FROM gallra.run", database: database) == "done")

                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
            }
        }
    }

    @Test func theServicePausesOnAPausedStandbyAndAReloadAppliesANewBound() async throws {
        try await withExpiredCustomers(count: 40, batchSize: 10) { database, conninfo, keyFile in
            try await Harness.withTemporaryDirectory { dir in
                let config = "\(dir)/gallra.yaml"
                try "throttle:\n  replica_lag_bytes: 1MB\n".write(toFile: config, atomically: true, encoding: .utf8)
                let daemon = try DaemonProcess(
                    database: conninfo, keyFile: keyFile, environment: ["WATCHDOG_USEC": "2000000"],
                    arguments: ["--config", config])
                try await daemon.notify.wait(for: "READY=1")

                try await TestReplica.withReplayPaused {
                    try await writeWAL(database: database)
                    let trigger = try await gallra("trigger", "--database", conninfo)
                    #expect(trigger.status == 0, "\(trigger.stderr)")
                    let paused = try await daemon.notify.waitForStatus(
                        containing: "purging stale-customers: 0/40 subjects; paused: replica \(TestReplica.name) replay"
                    )
                    try await Task.sleep(for: .seconds(2))
                    #expect(try await Harness.psql("SELECT count(*) FROM shop.customer", database: database) == "50")
                    // The main loop stays alive while paused: the watchdog keeps being served.
                    let pings = daemon.notify.all[paused...].filter { $0.assignments.contains("WATCHDOG=1") }.count
                    #expect(pings >= 1, "WATCHDOG=1 while paused")
                }
                try await waitUntil("the run is done", within: 30) {
                    try await Harness.psql("SELECT count(*) FROM shop.customer", database: database) == "10"
                }
                #expect(daemon.log.contains("batches paused: replica \(TestReplica.name)"), "\(daemon.log)")
                #expect(daemon.log.contains("batches resumed"), "\(daemon.log)")

                // A reload turns the bound off: the next run goes through while the standby is paused.
                try "throttle:\n  replica_lag_bytes: 0\n".write(toFile: config, atomically: true, encoding: .utf8)
                let mark = daemon.notify.all.count
                daemon.signal(SIGHUP)
                let reloading = try await daemon.notify.wait(for: "RELOADING=1", after: mark)
                try await daemon.notify.wait(for: "READY=1", after: reloading + 1)
                try await Harness.psql(
                    "INSERT INTO shop.customer SELECT g, now() - interval '2 years' FROM generate_series(1001, 1020) g",
                    database: database)
                try await TestReplica.withReplayPaused {
                    try await writeWAL(database: database)
                    let trigger = try await gallra("trigger", "--database", conninfo)
                    #expect(trigger.status == 0, "\(trigger.stderr)")
                    try await waitUntil("the second run is done while the standby is paused", within: 30) {
                        try await Harness.psql("SELECT count(*) FROM shop.customer", database: database) == "10"
                    }
                }
                #expect(
                    daemon.log.components(separatedBy: "batches paused").count == 2,
                    "only the first run paused: \(daemon.log)")

                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
            }
        }
    }
}
