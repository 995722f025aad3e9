import Foundation
import GallraTestSupport
import Testing

/// `gallra run --once` says how many entries of gallra's bookkeeping it pruned, in text and JSON.
@Suite("gallra run --once: pruned bookkeeping")
struct RunPruningTests {
    @Test func aRunReportsTheEntriesOfDeletedSubjectsItPruned() async throws {
        try await Harness.withDatabase { database, conninfo in
            try await Harness.withTemporaryDirectory { directory in
                let keyFile = directory + "/audit-key"
                try "c2VjcmV0LWF1ZGl0LWtleS1mb3ItdGhlLXBydW5pbmctdGVzdHMtMTIzNDU2Nzg=\n".write(
                    toFile: keyFile, atomically: true, encoding: .utf8)
                try await Harness.psql(
                    """
                    CREATE SCHEMA shop;
                    CREATE TABLE shop.customer (id integer PRIMARY KEY, email text, last_seen_at timestamptz NOT NULL);
                    INSERT INTO shop.customer SELECT g, 'c' || g || '@example.com', now() - interval '2 years'
                    FROM generate_series(1, 5) g;
                    """, database: database)
                let policy = directory + "/kept-customers.yaml"
                try """
                policy: kept-customers
                state: active
                subject: { table: shop.customer, key: id }
                expires: { inactive_for: 1 year, activity: last_seen_at }
                data:
                  - { table: shop.customer, anonymize: { email: null } }
                limits: { max_fraction: 1 }
                """.write(toFile: policy, atomically: true, encoding: .utf8)
                #expect(try await gallra("migrate", "--database", conninfo).status == 0)
                #expect(try await gallra("policy", "apply", "--database", conninfo, policy).status == 0)
                let environment = ["GALLRA_AUDIT_KEY_FILE": keyFile]

                let first = try await gallra("run", "--once", "--database", conninfo, environment: environment)
                #expect(first.status == 0, "\(first.stderr)")
                #expect(!first.stdout.contains("pruned"), "\(first.stdout)")
                try await Harness.psql("DELETE FROM shop.customer WHERE id IN (2, 4)", database: database)

                let second = try await gallra("run", "--once", "--database", conninfo, environment: environment)
                #expect(second.status == 0, "\(second.stderr)")
                #expect(
                    second.stdout.contains(
                        "  2 entries of gallra.processed and processed_row pruned (their rows are gone)"),
                    "\(second.stdout)")
                #expect(
                    try await Harness.psql(
                        "SELECT string_agg(subject_key, ',' ORDER BY subject_key) FROM gallra.processed",
                        database: database) == "1,3,5")
                #expect(
                    try await Harness.psql(
                        "SELECT counts->0->>'pruned' FROM gallra.run ORDER BY started_at DESC LIMIT 1",
                        database: database) == "2")
            }
        }
    }
}
