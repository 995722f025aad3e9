import Foundation
import GallraTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The service's signals at awkward moments: a trigger sent to a standby, a second SIGTERM while it stops.
@Suite("gallra run (the service): signals while standby or stopping", .serialized)
struct DaemonSignalTests {
    /// SIGUSR1 to a standby is kept, and runs once that gallra takes over.
    @Test func aTriggerSentToAStandbyRunsOnceItLeads() async throws {
        try await withExpiredCustomers(count: 12) { database, conninfo, keyFile in
            let environment = ["GALLRA_DAEMON_STANDBY_RETRY": "1"]
            let first = try DaemonProcess(database: conninfo, keyFile: keyFile, environment: environment)
            try await first.notify.waitForStatus(containing: "idle; next:")
            let second = try DaemonProcess(database: conninfo, keyFile: keyFile, environment: environment)
            try await second.notify.waitForStatus(containing: "standby: another gallra runs policies on this database")

            second.signal(SIGUSR1)
            try await waitUntil("the standby says it keeps the trigger", within: 10) {
                second.log.contains("trigger (signal) kept: this gallra is a standby or not connected to the database")
            }
            #expect(try await Harness.psql("SELECT count(*) FROM gallra.run", database: database) == "0")

            first.signal(SIGTERM)
            #expect(try await first.waitForExit(within: 15) == 0, "\(first.log)")
            try await waitUntil("the kept trigger has run", within: 30) {
                try await Harness.psql(
                    "SELECT count(*) FROM gallra.run WHERE trigger = 'signal' AND outcome = 'done'",
                    database: database) == "1"
            }
            #expect(try await Harness.psql("SELECT count(*) FROM shop.customer", database: database) == "10")
            #expect(second.log.contains("running the trigger (signal) kept while this gallra was not leading"))
            second.signal(SIGTERM)
            #expect(try await second.waitForExit(within: 15) == 0, "\(second.log)")
        }
    }

    /// The first SIGTERM stops the run after the batch in flight; a second one while the service records the
    /// run changes nothing: the shutdown goes on, the run is recorded as interrupted, every batch is whole, and
    /// the service exits 0.
    @Test func aSecondSIGTERMWhileStoppingChangesNothing() async throws {
        try await withExpiredCustomers(count: 40, batchSize: 5, pause: "1s") { database, conninfo, keyFile in
            try await Harness.withTemporaryDirectory { dir in
                let daemon = try DaemonProcess(database: conninfo, keyFile: keyFile)
                try await daemon.notify.wait(for: "READY=1")
                #expect(try await gallra("trigger", "--database", conninfo).status == 0)
                try await waitUntil("a batch has committed", within: 30) {
                    try await Harness.psql("SELECT count(*) FROM gallra.audit_block", database: database) != "0"
                }

                // The run's row is held, so that recording the run's end waits: the shutdown lasts.
                // (FOR NO KEY UPDATE: as weak as holding back the update needs.)
                let holder = try RowHolder(
                    conninfo: conninfo, dir: dir,
                    lock: "SELECT id FROM gallra.run WHERE outcome = 'running' FOR NO KEY UPDATE")
                defer { holder.release() }
                try await waitUntil("the run's row is held", within: 10) { holder.holds }

                let mark = daemon.notify.all.count
                daemon.signal(SIGTERM)
                try await daemon.notify.wait(for: "STOPPING=1", after: mark)
                try await waitUntil("the service waits to record the run", within: 15) {
                    try await Harness.psql(
                        """
                        SELECT count(*) FROM pg_stat_activity
                        WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE gallra.run SET finished_at%'
                        """, database: database) == "1"
                }
                daemon.signal(SIGTERM)
                try await Task.sleep(for: .seconds(2))
                #expect(daemon.process.isRunning, "the second SIGTERM does not cut the shutdown short")

                holder.release()
                #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
                #expect(
                    try await Harness.psql("SELECT outcome FROM gallra.run", database: database) == "interrupted")
                let deleted = try #require(
                    Int(try await Harness.psql("SELECT 50 - count(*) FROM shop.customer", database: database)))
                #expect(deleted > 0 && deleted < 40, "stopped mid-run: \(deleted) of 40 deleted")
                #expect(deleted % 5 == 0, "whole batches of 5 only: \(deleted)")
                #expect(
                    try await Harness.psql(
                        "SELECT count(*) || ' ' || (SELECT sum(subjects) FROM gallra.audit_block) FROM gallra.audit_subject",
                        database: database) == "\(deleted) \(deleted)")
                #expect(
                    try await Harness.psql(
                        "SELECT sum((p->>'processed')::int) FROM gallra.run, jsonb_array_elements(counts) AS p",
                        database: database) == "\(deleted)")
            }
        }
    }
}

/// A psql session that holds a row lock in an open transaction until released.
final class RowHolder {
    let process = Process()
    let input = Pipe()
    let outputPath: String

    init(conninfo: String, dir: String, lock: String) throws {
        outputPath = "\(dir)/holder-\(UUID().uuidString.prefix(8)).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", conninfo, "-X", "-q", "-A", "-t"]
        process.standardInput = input
        let output = FileHandle(forWritingAtPath: outputPath)
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data("BEGIN;\n\(lock);\n\\echo held\n".utf8))
    }

    var holds: Bool {
        ((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "").contains("held")
    }

    func release() {
        guard process.isRunning else { return }
        input.fileHandleForWriting.write(Data("COMMIT;\n\\q\n".utf8))
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
