import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("The service and its erasure ledger", .serialized)
struct DaemonLedgerTests {
    @Test("a database behind its ledger gets no live run until gallra ledger accept, then the service resumes")
    func aRestoredDatabaseHoldsTheServiceOff() async throws {
        try await withExpiredCustomers(count: 20) { database, conninfo, keyFile in
            let directory = NSTemporaryDirectory() + "gallra-ledger-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let path = directory + "/ledger"
            let environment = ["GALLRA_AUDIT_KEY_FILE": keyFile, "GALLRA_LEDGER_PATH": path]
            let first = try await gallra("run", "--once", "--database", conninfo, environment: environment)
            try #require(first.status == 0, "\(first.stderr)")
            let blocks = try await Harness.psql("SELECT count(*) FROM gallra.audit_block", database: database)
            try #require(blocks == "4")
            // As if restored from a backup taken before the last batch; then new expired customers.
            try await Harness.psql(
                """
                SET session_replication_role = replica;
                DELETE FROM gallra.audit_subject WHERE block = 4;
                DELETE FROM gallra.audit_block WHERE sequence = 4;
                UPDATE gallra.audit_head SET (sequence, hash) = (SELECT sequence, hash FROM gallra.audit_block WHERE sequence = 3);
                RESET session_replication_role;
                INSERT INTO shop.customer SELECT g, now() - interval '2 years' FROM generate_series(501, 505) g;
                """, database: database)
            let daemon = try DaemonProcess(
                database: conninfo, keyFile: keyFile, environment: ["GALLRA_LEDGER_PATH": path])
            try await daemon.notify.wait(for: "READY=1")
            try await daemon.notify.waitForStatus(containing: "holding off", within: 15)
            try await waitUntil("the restore is logged", within: 5) {
                daemon.log.contains("the database is older than its erasure ledger")
            }
            #expect(daemon.log.contains("1 block(s) with 5 subject record(s) are missing"), "\(daemon.log)")
            #expect(daemon.log.contains("gallra ledger replay --dry-run"))
            // A trigger runs nothing while it holds off; nor does the service exit.
            daemon.signal(SIGUSR1)
            try await waitUntil("the trigger is refused", within: 5) { daemon.log.contains("trigger (") }
            try await Task.sleep(for: .seconds(1))
            #expect(
                try await Harness.psql(
                    "SELECT count(*) FROM shop.customer WHERE id BETWEEN 501 AND 505", database: database)
                    == "5")
            #expect(try await Harness.psql("SELECT count(*) FROM gallra.audit_block", database: database) == "3")
            #expect(daemon.process.isRunning)
            // The operator accepts; SIGHUP has the service look again, and it resumes.
            let accept = try await gallra("ledger", "accept", "--database", conninfo, environment: environment)
            #expect(accept.status == 0, "\(accept.stderr)")
            daemon.signal(SIGHUP)
            try await waitUntil("the service resumes", within: 10) {
                daemon.log.contains("live runs and erasure requests resume")
            }
            daemon.signal(SIGUSR1)
            try await waitUntil("the new expired customers are purged", within: 15) {
                try await Harness.psql(
                    "SELECT count(*) FROM shop.customer WHERE id BETWEEN 501 AND 505", database: database) == "0"
            }
            try await waitUntil("the ledger caught up", within: 10) {
                let head = try await Harness.psql("SELECT hash FROM gallra.audit_head", database: database)
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                return text.split(separator: "\n").last?.contains(head) == true
            }
            #expect(try await gallra("ledger", "verify", path).status == 0)
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
        }
    }
}
