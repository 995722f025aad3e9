import GallraTestSupport
import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import Testing

/// Small hand-made schemas: loaded from inline SQL, a policy written inline, run dry then live, and the result
/// checked against what the test says by hand (never against the planner's SQL).
enum EdgeCase {
    /// Loads `sql` (several statements) with psql, as an operator would, and migrates gallra's schema.
    static func load(_ sql: String, into database: TestDatabase, on connection: PostgresConnection) async throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("gallra-edge-\(UUID().uuidString).sql").path
        try sql.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try database.runScript(path)
        try await Schema.migrate(on: connection)
    }

    /// `yaml` (one policy) validated against the database's catalog.
    static func validation(_ yaml: String, on connection: PostgresConnection) async throws -> Validation {
        let file = PolicyFile(parsing: yaml, path: "edge.yaml")
        let parsed = try #require(file.policies.first, "\(file.diagnostics)")
        let catalog = try await CatalogReader.read(on: connection)
        return validate(parsed, against: catalog)
    }

    /// `yaml` validated without errors, ready to run.
    static func policy(_ yaml: String, on connection: PostgresConnection) async throws -> RunPolicy {
        let validation = try await validation(yaml, on: connection)
        #expect(validation.errors.isEmpty, "\(validation.errors)")
        let resolved = try #require(validation.resolved, "\(validation.errors)")
        return RunPolicy(resolved: resolved, version: 1, state: resolved.policy.state)
    }

    /// Runs `policies` dry, then live, then live again (which must find nothing to do). Returns the dry and the
    /// first live report of each policy.
    static func run(_ policies: [RunPolicy], on connection: PostgresConnection) async throws -> (
        dry: [PolicyRunReport], live: [PolicyRunReport]
    ) {
        let engine = try DemoShop.engine(connection)
        let dry = try await engine.run(policies, options: DemoShop.options(.dry))
        #expect(dry.outcome == .done)
        for report in dry.policies {
            #expect(report.failure == nil, "\(report.failure?.rawValue ?? "")")
            #expect(report.refused == nil)
        }
        let live = try await engine.run(policies, options: DemoShop.options(.live))
        #expect(live.outcome == .done)
        for report in live.policies {
            #expect(report.failure == nil, "\(report.failure?.rawValue ?? "")")
            #expect(report.skippedBatches.isEmpty)
        }
        let again = try await engine.run(policies, options: DemoShop.options(.live))
        for report in again.policies {
            #expect(report.expiring == 0, "a second run of \(report.name) finds subjects due")
            #expect(report.processed == 0)
            #expect(report.steps.allSatisfy { $0.rows == 0 && $0.retained == 0 })
        }
        return (dry.policies, live.policies)
    }

    /// One policy: dry, live, live again.
    static func run(_ policy: RunPolicy, on connection: PostgresConnection) async throws -> (
        dry: PolicyRunReport, live: PolicyRunReport
    ) {
        let (dry, live) = try await run([policy], on: connection)
        return (try #require(dry.first), try #require(live.first))
    }

    /// The dry run's numbers are the live run's.
    static func expectSameNumbers(dry: PolicyRunReport, live: PolicyRunReport) {
        #expect(dry.expiring == live.expiring, "expiring")
        #expect(dry.exempted == live.exempted, "exempted")
        #expect(dry.processed == live.processed, "processed")
        #expect(dry.batches == live.batches, "batches")
        #expect(dry.steps == live.steps, "rows per data point")
        #expect(dry.tables == live.tables, "rows per table")
        #expect(dry.consentEvents == live.consentEvents, "consent events")
    }
}

/// What a run must do to one table, written by hand: which rows it deletes, which it anonymizes and in which
/// columns. Every other row, and every other column of an anonymized row, must stay as it was.
struct TableOracle: Sendable {
    /// The table in SQL (`shop."order"`).
    var table: String
    /// The table as reports name it, when that differs (`shop.order`: gallra's syntax needs no quotes there).
    var reported: String? = nil
    /// The key over alias `t`, e.g. `t.id`; it orders the rows in checksums.
    var key: String
    /// Keys (as text) of the rows deleted.
    var deleted: [String] = []
    /// Keys (as text) of the rows anonymized.
    var anonymized: [String] = []
    /// The anonymized columns, by exact name.
    var columns: [String] = []

    /// The table's state before a run, as the oracle sees it.
    struct Snapshot: Sendable, Equatable {
        var keys: [String]
        /// md5 over the rows neither deleted nor anonymized.
        var untouched: String
        /// md5 over the anonymized rows without their anonymized columns.
        var kept: String
    }

    static func array(_ texts: [String]) -> String {
        "ARRAY[" + texts.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }.joined(separator: ",")
            + "]::text[]"
    }

    func snapshot(on connection: PostgresConnection) async throws -> Snapshot {
        let keys = try await connection.query("SELECT (\(key))::text AS k FROM \(table) AS t ORDER BY \(key)").map {
            try $0.decode("k", as: String.self)
        }
        let untouched = try await scalar(
            """
            SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY \(key)), '')) AS sum FROM \(table) AS t
            WHERE (\(key))::text <> ALL (\(Self.array(deleted + anonymized)))
            """, as: String.self, on: connection)
        let kept = try await scalar(
            """
            SELECT md5(coalesce(string_agg((to_jsonb(t) - \(Self.array(columns)))::text, ',' ORDER BY \(key)), ''))
              AS sum
            FROM \(table) AS t WHERE (\(key))::text = ANY (\(Self.array(anonymized)))
            """, as: String.self, on: connection)
        return Snapshot(keys: keys, untouched: untouched, kept: kept)
    }

    /// Checks the table after the run against its snapshot before it.
    func expectDone(since before: Snapshot, on connection: PostgresConnection) async throws {
        let after = try await snapshot(on: connection)
        for key in deleted + anonymized {
            #expect(before.keys.contains(key), "\(table): the oracle names a row \(key) the table does not hold")
        }
        #expect(after.keys == before.keys.filter { !deleted.contains($0) }, "\(table): rows left")
        #expect(after.untouched == before.untouched, "\(table): rows that must not change changed")
        #expect(after.kept == before.kept, "\(table): columns of anonymized rows that must not change changed")
    }

    /// The report's counts for the table equal the oracle's.
    func expectCounted(in report: PolicyRunReport, retained: Int = 0) {
        let name = reported ?? table
        let counts = report.tables.first { $0.table == name }
        #expect(counts != nil, "\(name) is not in the report: \(report.tables.map(\.table))")
        #expect(counts?.deleted == deleted.count, "\(table) deleted")
        #expect(counts?.anonymized == anonymized.count, "\(table) anonymized")
        #expect(counts?.retained == retained, "\(table) retained")
    }
}

extension [TableOracle] {
    func snapshots(on connection: PostgresConnection) async throws -> [TableOracle.Snapshot] {
        var snapshots: [TableOracle.Snapshot] = []
        for oracle in self { snapshots.append(try await oracle.snapshot(on: connection)) }
        return snapshots
    }

    func expectDone(since before: [TableOracle.Snapshot], on connection: PostgresConnection) async throws {
        for (oracle, snapshot) in zip(self, before) { try await oracle.expectDone(since: snapshot, on: connection) }
    }
}

/// The keys (as text, in key order) a query returns in its column `k`.
func keys(_ query: String, _ parameters: [PostgresValue] = [], on connection: PostgresConnection) async throws
    -> [String]
{
    try await connection.query(query, parameters).map { try $0.decode("k", as: String.self) }
}
