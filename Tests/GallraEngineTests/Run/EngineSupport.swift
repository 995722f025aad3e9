import GallraTestSupport
import Foundation
import GallraEngine
import GallraPolicy
import GallraPostgres
import Synchronization
import Testing

/// The demo shop, loaded as an operator would, and its policies validated against the live catalog.
enum DemoShop {
    /// The instant the demo data is generated relative to, and the runs evaluate expiry at.
    static let asOfText = "2026-11-29 00:00:00+00"
    static let asOf = Date(timeIntervalSince1970: 1_795_910_400)
    /// The audit key of the tests.
    static let keyBytes = [UInt8](repeating: 7, count: 32)

    static func auditKey() throws -> AuditKey { try AuditKey(bytes: keyBytes) }

    /// The audit digest of a customer, recomputed from the test key.
    static func digest(customer id: some CustomStringConvertible) -> String {
        Digest.hex(Digest.hmacSHA256(key: keyBytes, message: Array("shop.customer:\(id)".utf8)))
    }

    /// The subject digests in the audit trail.
    static func auditedDigests(on connection: PostgresConnection) async throws -> Set<String> {
        Set(
            try await connection.query("SELECT subject_digest FROM gallra.audit_subject").map {
                try $0.decode("subject_digest", as: String.self)
            })
    }

    /// Loads `config/demo/schema.sql` and `generate.sql` with `customers`, and migrates gallra's schema.
    static func load(_ database: TestDatabase, on connection: PostgresConnection, customers: Int = 2000) async throws {
        try database.runScript(sourceRoot.appendingPathComponent("config/demo/schema.sql").path)
        try database.runScript(
            sourceRoot.appendingPathComponent("config/demo/generate.sql").path,
            variables: ["customers": "\(customers)", "as_of": asOfText])
        try await Schema.migrate(on: connection)
    }

    /// Stores the shipped `revoked-newsletter-consent` policy, as `gallra policy apply` does, and runs
    /// `config/demo/consent.sql`, which moves the shop's consent table into gallra's registry under it.
    static func importConsent(_ database: TestDatabase, on connection: PostgresConnection) async throws {
        let path = sourceRoot.appendingPathComponent("config/policies/revoked-newsletter-consent.yaml").path
        let file = PolicyFile.read(path: path)
        let parsed = try #require(file.policies.first, "\(file.diagnostics)")
        _ = try await PolicyStore(connection: connection).apply([(parsed.policy, source: path)])
        try database.runScript(sourceRoot.appendingPathComponent("config/demo/consent.sql").path, variables: [:])
    }

    /// `config/policies/<name>.yaml`, validated against the database's catalog; `edit` adjusts the result.
    static func policy(
        _ name: String, version: Int = 1, on connection: PostgresConnection,
        edit: (inout ResolvedPolicy) -> Void = { _ in }
    ) async throws -> RunPolicy {
        let file = PolicyFile.read(path: sourceRoot.appendingPathComponent("config/policies/\(name).yaml").path)
        let parsed = try #require(file.policies.first, "\(file.diagnostics)")
        let catalog = try await CatalogReader.read(on: connection)
        let validation = validate(parsed, against: catalog)
        var resolved = try #require(validation.resolved, "\(validation.errors)")
        edit(&resolved)
        return RunPolicy(resolved: resolved, version: version, state: resolved.policy.state)
    }

    /// An engine on `connection` with the test key.
    static func engine(_ connection: PostgresConnection, key: Bool = true) throws -> Engine {
        Engine(connection: connection, auditKey: key ? try auditKey() : nil)
    }

    /// Run options at the demo instant; with `database`, parallel batches connect to it and `opened` counts
    /// the connections they open.
    static func options(
        _ mode: RunOptions.Mode, allowLarge: Bool = false, database: TestDatabase? = nil,
        opened: Counter = Counter()
    ) -> RunOptions {
        var options = RunOptions(mode: mode, asOf: asOf, allowLarge: allowLarge, retryBackoff: .milliseconds(10))
        if let database {
            options.connect = {
                opened.increment()
                return try await database.connect()
            }
        }
        return options
    }

    /// The demo shop's tables.
    static let tables = [
        "shop.address", "shop.customer", "shop.store", "shop.product", #"shop."order""#, "shop.order_line",
        "shop.wishlist_item", "shop.cart", "shop.cart_item", "shop.newsletter_log", "shop.newsletter_consent",
        "shop.employee",
    ]
}

/// md5 over the rows of a query, in a stable order.
func checksum(_ query: String, on connection: PostgresConnection) async throws -> String {
    try await scalar(
        "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM (\(query)) AS t", as: String.self,
        on: connection)
}

/// Checksums of every demo table and of gallra's tables.
func checksumEverything(on connection: PostgresConnection) async throws -> [String: String] {
    var sums: [String: String] = [:]
    let gallra = [
        "gallra.run", "gallra.audit_head", "gallra.audit_block", "gallra.audit_subject", "gallra.processed",
        "gallra.processed_row",
        "gallra.policy",
    ]
    for table in DemoShop.tables + gallra {
        sums[table] = try await checksum("SELECT * FROM \(table)", on: connection)
    }
    return sums
}

extension TestDatabase {
    /// Runs a psql script with `-v NAME=VALUE` variables.
    func runScript(_ path: String, variables: [String: String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["psql", conninfo, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
            + variables.flatMap { ["-v", "\($0.key)=\($0.value)"] } + ["-f", path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "psql -f \(path) failed: \(message)")
    }
}

/// Counts calls.
final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}

/// Collects progress reports.
final class ProgressLog: Sendable {
    private let entries = Mutex<[RunProgress]>([])
    func append(_ progress: RunProgress) { entries.withLock { $0.append(progress) } }
    var all: [RunProgress] { entries.withLock { $0 } }
}
