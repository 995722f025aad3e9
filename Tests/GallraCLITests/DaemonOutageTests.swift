import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The service while PostgreSQL goes away and comes back, on a cluster of its own (scripts/pg.sh), so that no
/// other test loses its server.
@Suite("gallra run through a database outage", .serialized)
struct DaemonOutageTests {
    @Test func theServiceStaysUpAndFinishesTheRunOnceTheDatabaseIsBack() async throws {
        let root = ProcessInfo.processInfo.environment["GALLRA_SOURCE_ROOT"] ?? FileManager.default.currentDirectoryPath
        let directory = "/tmp/gallra-outage-\(UUID().uuidString.prefix(8))"
        // Output to files: the server inherits the script's descriptors, so a pipe would never reach its end.
        let started = try await shell(
            "\(root)/scripts/pg.sh start \(directory) >\(directory).conninfo 2>\(directory).err")
        defer {
            shellBlocking("\(root)/scripts/pg.sh stop \(directory); rm -f \(directory).conninfo \(directory).err")
        }
        try #require(
            started == 0,
            "scripts/pg.sh start failed: \((try? String(contentsOfFile: directory + ".err", encoding: .utf8)) ?? "")")
        let conninfo = try String(contentsOfFile: directory + ".conninfo", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        func psql(_ sql: String) async throws -> String {
            let result = try await run("/usr/bin/psql", [conninfo, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql])
            try #require(result.status == 0, "\(result.stderr)")
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let pgCtl =
            "runuser -u postgres -- $(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pg_ctl -D \(directory)/data"

        try await Harness.withTemporaryDirectory { scratch in
            let keyFile = scratch + "/audit-key"
            try "c2VjcmV0LWF1ZGl0LWtleS1mb3ItdGhlLW91dGFnZS10ZXN0LTEyMzQ1Njc4OQ==\n".write(
                toFile: keyFile, atomically: true, encoding: .utf8)
            _ = try await psql(
                """
                CREATE SCHEMA shop;
                CREATE TABLE shop.customer (id integer PRIMARY KEY, last_seen_at timestamptz NOT NULL);
                INSERT INTO shop.customer SELECT g, now() - interval '2 years' FROM generate_series(1, 100) g;
                INSERT INTO shop.customer SELECT g, now() FROM generate_series(100001, 100010) g;
                """)
            let policy = scratch + "/stale-customers.yaml"
            try """
            policy: stale-customers
            state: active
            subject: { table: shop.customer, key: id }
            expires: { inactive_for: 1 year, activity: last_seen_at }
            data:
              - { table: shop.customer, delete: true }
            limits: { batch_size: 5, max_subjects_per_run: 100000, max_fraction: 1, pause: 300ms }
            """.write(toFile: policy, atomically: true, encoding: .utf8)
            #expect(try await gallra("migrate", "--database", conninfo).status == 0)
            #expect(try await gallra("policy", "apply", "--database", conninfo, policy).status == 0)

            let daemon = try DaemonProcess(
                database: conninfo, keyFile: keyFile, environment: ["GALLRA_DAEMON_RETRY_MAX": "1"])
            try await daemon.notify.wait(for: "READY=1")
            #expect(try await gallra("trigger", "--database", conninfo).status == 0)
            try await daemon.notify.waitForStatus(containing: "purging stale-customers: 10/100 subjects")

            #expect(try await shell("\(pgCtl) -m fast -w stop") == 0)
            try await daemon.notify.waitForStatus(containing: "database unreachable since")
            try await Task.sleep(for: .seconds(3))
            #expect(daemon.process.isRunning)
            #expect(try await shell("\(pgCtl) -l \(directory)/server.log -w start") == 0)

            try await waitUntil("the run is done after the restart", within: 90) {
                try await psql("SELECT count(*) FROM gallra.run WHERE outcome = 'done'") == "1"
            }
            #expect(try await psql("SELECT count(*) FROM shop.customer") == "10")
            #expect(
                try await psql("SELECT count(*) || ' ' || count(DISTINCT subject_digest) FROM gallra.audit_subject")
                    == "100 100")
            let verify = try await gallra("audit", "verify", "--database", conninfo)
            #expect(verify.status == 0, "\(verify.stdout)")
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit(within: 15) == 0)
            // One warning when it went down, one notice when it came back: not one line per retry.
            let log = daemon.log
            #expect(log.components(separatedBy: "database unreachable:").count - 1 == 1, "\(log)")
            #expect(log.components(separatedBy: "database reachable again").count - 1 == 1)
        }
    }
}

/// Runs a shell command line (its output discarded: a server it starts must not hold our pipes) and waits; its
/// exit status.
private func shell(_ command: String) async throws -> Int32 {
    // Through Python's subprocess with close_fds: Foundation leaves the pipes' other descriptors open in the child,
    // and a server started here would hold them, so the read of our output would never end.
    let script =
        "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1], shell=True, close_fds=True, "
        + "stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))"
    return try await run("/usr/bin/env", ["python3", "-c", script, command]).status
}

/// `shell` for a `defer`, on a thread of its own.
private func shellBlocking(_ command: String) {
    let done = DispatchSemaphore(value: 0)
    Thread {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "(" + command + ") </dev/null >/dev/null 2>&1"]
        try? process.run()
        process.waitUntilExit()
        done.signal()
    }.start()
    done.wait()
}
