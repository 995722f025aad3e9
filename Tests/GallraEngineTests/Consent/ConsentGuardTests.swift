import Foundation
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

@testable import GallraEngine

/// A shop whose newsletter sign-ups (a foreign key to the customer) and notes (an integer column holding the bigint key, no
/// foreign key) are collected only with consent to the policy `newsletter`.
private func newsletterYAML(state: String = "active", collect: String = "with_consent", basis: String = "consent")
    -> String
{
    """
    policy: newsletter
    legal_basis: \(basis)
    collect: \(collect)
    state: \(state)
    subject: { table: shop.customer, key: id }
    expires: { consent_revoked: 30 days, consent: gallra }
    data:
      - { table: shop.signup, delete: true }
      - { table: shop.note, via: customer_ref, delete: true }
    """
}

/// Validates `yaml` against the database's catalog and stores it with its guards, as `gallra policy apply` does.
@discardableResult
private func apply(_ yaml: String, on connection: PostgresConnection) async throws -> [PolicyChange] {
    let file = PolicyFile(parsing: yaml, path: "newsletter.yaml")
    try #require(!file.hasErrors, "\(file.diagnostics)")
    let parsed = try #require(file.policies.first)
    let validation = parsed.validate(against: try await CatalogReader.read(on: connection))
    let resolved = try #require(validation.resolved, "\(validation.diagnostics)")
    return try await PolicyStore(connection: connection).apply(
        [(parsed.policy, source: "newsletter.yaml")], guards: [resolved.name: ConsentGuard.guards(of: resolved)])
}

private func withShop(_ body: (TestDatabase, PostgresConnection) async throws -> Void) async throws {
    try await TestDatabase.with { database, connection in
        try await execute(
            [
                "CREATE SCHEMA shop",
                "CREATE TABLE shop.customer (id bigint PRIMARY KEY, last_seen_at timestamptz)",
                """
                CREATE TABLE shop.signup (
                    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    customer_id bigint REFERENCES shop.customer, channel text)
                """,
                "CREATE INDEX ON shop.signup (customer_id)",
                "CREATE TABLE shop.note (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_ref integer, body text)",
                "CREATE INDEX ON shop.note (customer_ref)",
                "INSERT INTO shop.customer (id) VALUES (1), (2), (3)",
            ], on: connection)
        try await Schema.migrate(on: connection)
        try await body(database, connection)
    }
}

/// The guard triggers on the shop's tables, as `table trigger` lines.
private func triggers(on connection: PostgresConnection) async throws -> [String] {
    try await connection.query(
        """
        SELECT t.tgrelid::regclass::text || ' ' || t.tgname AS line FROM pg_trigger AS t
        WHERE t.tgrelid::regclass::text LIKE 'shop.%' AND NOT t.tgisinternal ORDER BY 1
        """
    ).map { try $0.decode("line", as: String.self) }
}

private func refusal(_ sql: String, on connection: PostgresConnection) async -> PostgresError? {
    await #expect(throws: PostgresError.self, "\(sql)") { try await connection.execute(sql) }
}

@Suite("collect: with_consent: the consent guards")
struct ConsentGuardTests {
    @Test("the guard refuses an insert for a subject without consent, accepts it after a grant, refuses after a revoke")
    func insertAroundGrant() async throws {
        try await withShop { _, connection in
            try await apply(newsletterYAML(), on: connection)
            let error = await refusal(
                "INSERT INTO shop.signup (customer_id, channel) VALUES (1, 'web')", on: connection)
            #expect(error?.sqlState == SQLState.consentRequired)
            #expect(error?.message.contains("policy newsletter") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("shop.customer 1") == true, "\(error?.message ?? "")")
            #expect(error?.hint?.contains("gallra.grant_consent") == true)
            #expect(try await scalar("SELECT count(*) FROM shop.signup", as: Int.self, on: connection) == 0)

            _ = try await connection.query("SELECT gallra.grant_consent('shop.customer', '1', 'newsletter', 'web')")
            try await connection.execute("INSERT INTO shop.signup (customer_id, channel) VALUES (1, 'web')")
            // The grant and the insert in one transaction of the shop's, as a sign-up form does it.
            try await connection.transaction { connection in
                _ = try await connection.query("SELECT gallra.grant_consent('shop.customer', '2', 'newsletter')")
                try await connection.execute("INSERT INTO shop.note (customer_ref, body) VALUES (2, 'hello')")
            }
            // A row that links to no subject belongs to no one: not checked.
            try await connection.execute("INSERT INTO shop.signup (customer_id, channel) VALUES (NULL, 'store')")
            // Several rows in one statement: one without consent refuses the statement.
            let mixed = await refusal(
                "INSERT INTO shop.signup (customer_id) VALUES (1), (3)", on: connection)
            #expect(mixed?.sqlState == SQLState.consentRequired)
            #expect(mixed?.message.contains("shop.customer 3") == true)

            _ = try await connection.query("SELECT gallra.revoke_consent('shop.customer', '1', 'newsletter')")
            let revoked = await refusal(
                "INSERT INTO shop.signup (customer_id, channel) VALUES (1, 'app')", on: connection)
            #expect(revoked?.sqlState == SQLState.consentRequired)
            #expect(try await scalar("SELECT count(*) FROM shop.signup", as: Int.self, on: connection) == 2)
        }
    }

    @Test("an update that moves a row to a subject without consent is refused; other updates are not checked")
    func updates() async throws {
        try await withShop { _, connection in
            try await apply(newsletterYAML(), on: connection)
            _ = try await connection.query("SELECT gallra.grant_consent('shop.customer', '1', 'newsletter')")
            try await connection.execute("INSERT INTO shop.signup (customer_id, channel) VALUES (1, 'web')")
            try await connection.execute("INSERT INTO shop.note (customer_ref, body) VALUES (1, 'a')")
            _ = try await connection.query("SELECT gallra.revoke_consent('shop.customer', '1', 'newsletter')")
            // The row stays with its subject: no check (this is how gallra itself anonymizes such rows).
            try await connection.execute("UPDATE shop.signup SET channel = 'store'")
            try await connection.execute("UPDATE shop.signup SET customer_id = customer_id")
            // Detached from its subject: no one's.
            try await connection.execute("UPDATE shop.note SET customer_ref = NULL")
            let moved = await refusal("UPDATE shop.signup SET customer_id = 2", on: connection)
            #expect(moved?.sqlState == SQLState.consentRequired)
            let attached = await refusal("UPDATE shop.note SET customer_ref = 3", on: connection)
            #expect(attached?.sqlState == SQLState.consentRequired)
            _ = try await connection.query("SELECT gallra.grant_consent('shop.customer', '2', 'newsletter')")
            try await connection.execute("UPDATE shop.signup SET customer_id = 2")
            // A link to no subject at all (no foreign key holds the note back).
            let nobody = await refusal("INSERT INTO shop.note (customer_ref) VALUES (99)", on: connection)
            #expect(nobody?.sqlState == SQLState.consentRequired)
            #expect(nobody?.message.contains("links to no subject") == true, "\(nobody?.message ?? "")")
        }
    }

    @Test("the shop's role needs no right on gallra's schema for the guard to read consent")
    func shopRole() async throws {
        let role = "gallra_t_guard_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try await TestServer.admin()
        do {
            try await withShop { database, connection in
                try await apply(newsletterYAML(), on: connection)
                try await execute(
                    [
                        "CREATE ROLE \(role) LOGIN",
                        "GRANT USAGE ON SCHEMA shop TO \(role)",
                        "GRANT SELECT, INSERT ON shop.signup, shop.customer TO \(role)",
                    ], on: connection)
                let shop = try await PostgresConnection.connect(database.conninfo + " user=\(role)")
                do {
                    let error = await refusal(
                        "INSERT INTO shop.signup (customer_id) VALUES (1)", on: shop)
                    #expect(error?.sqlState == SQLState.consentRequired, "\(error?.message ?? "")")
                    _ = try await connection.query("SELECT gallra.grant_consent('shop.customer', '1', 'newsletter')")
                    try await shop.execute("INSERT INTO shop.signup (customer_id) VALUES (1)")
                    // A search_path of the caller's own, with an = on text that always holds, changes nothing.
                    try await execute(
                        [
                            "CREATE SCHEMA \(role)_evil AUTHORIZATION \(role)",
                            "CREATE FUNCTION \(role)_evil.yes(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
                            """
                            CREATE OPERATOR \(role)_evil.= (
                                LEFTARG = text, RIGHTARG = text, FUNCTION = \(role)_evil.yes)
                            """,
                            "ALTER FUNCTION \(role)_evil.yes(text, text) OWNER TO \(role)",
                            "ALTER OPERATOR \(role)_evil.= (text, text) OWNER TO \(role)",
                        ], on: connection)
                    try await shop.execute("SET search_path = \(role)_evil, pg_catalog")
                    #expect(try await scalar("SELECT 'a' = 'b'", as: Bool.self, on: shop), "the caller's = holds")
                    let hostile = await refusal(
                        "INSERT INTO shop.signup (customer_id) VALUES (3)", on: shop)
                    #expect(hostile?.sqlState == SQLState.consentRequired, "\(hostile?.message ?? "")")
                    try await shop.execute("RESET search_path")
                    // The guard function is not the shop's to call.
                    let function = try await scalar(
                        "SELECT 'gallra.' || function_name FROM gallra.consent_guard LIMIT 1", as: String.self,
                        on: connection)
                    let call = await #expect(throws: PostgresError.self) {
                        try await shop.query("SELECT \(function)()")
                    }
                    #expect(call?.sqlState == .insufficientPrivilege)
                } catch {
                    await shop.close()
                    throw error
                }
                await shop.close()
                try await connection.execute("DROP OWNED BY \(role) CASCADE")
            }
        } catch {
            _ = try? await admin.execute("DROP ROLE IF EXISTS \(role)")
            await admin.close()
            throw error
        }
        try await admin.execute("DROP ROLE IF EXISTS \(role)")
        await admin.close()
    }

    @Test("disable removes every trigger; apply installs, leaves an equal guard alone, and replaces a changed one")
    func lifecycle() async throws {
        try await withShop { _, connection in
            // A draft guards nothing yet.
            try await apply(newsletterYAML(state: "draft"), on: connection)
            #expect(try await triggers(on: connection) == [])

            try await apply(newsletterYAML(), on: connection)
            let installed = try await ConsentGuards.installed(policy: "newsletter", on: connection)
            #expect(installed.map(\.table) == ["shop.note", "shop.signup"])
            #expect(installed.map(\.intact) == [true, true])
            #expect(installed.map(\.columns) == [["customer_ref"], ["customer_id"]])
            let names = installed.map(\.functionName)
            #expect(
                try await triggers(on: connection) == [
                    "shop.note gallra_\(names[0])_insert", "shop.note gallra_\(names[0])_update",
                    "shop.signup gallra_\(names[1])_insert", "shop.signup gallra_\(names[1])_update",
                ])

            // Applied again unchanged: nothing is dropped or created (the functions keep their oids).
            let oids = try await connection.query(
                "SELECT oid::int8 AS oid FROM pg_proc WHERE proname LIKE 'consent_guard_%' ORDER BY 1"
            ).map { try $0.decode("oid", as: Int64.self) }
            #expect(try await apply(newsletterYAML(), on: connection).map(\.storesVersion) == [false])
            let again = try await connection.query(
                "SELECT oid::int8 AS oid FROM pg_proc WHERE proname LIKE 'consent_guard_%' ORDER BY 1"
            ).map { try $0.decode("oid", as: Int64.self) }
            #expect(again == oids)

            // A guarded table's trigger dropped by hand: the next apply puts it back.
            try await connection.execute("DROP TRIGGER gallra_\(names[1])_insert ON shop.signup")
            #expect(
                try await ConsentGuards.installed(policy: "newsletter", on: connection).map(\.intact) == [true, false])
            try await apply(newsletterYAML(), on: connection)
            #expect(
                try await ConsentGuards.installed(policy: "newsletter", on: connection).map(\.intact) == [true, true])

            // A changed policy that no longer names the notes: their guard goes, in the same transaction.
            try await apply(
                newsletterYAML().replacingOccurrences(
                    of: "\n  - { table: shop.note, via: customer_ref, delete: true }", with: ""), on: connection)
            #expect(
                try await ConsentGuards.installed(policy: "newsletter", on: connection).map(\.table) == ["shop.signup"])
            #expect(try await triggers(on: connection).count == 2)
            try await connection.execute("INSERT INTO shop.note (customer_ref) VALUES (3)")

            // Disabled: no trigger, no function, no row left behind.
            try await PolicyStore(connection: connection).disable(try PolicyName("newsletter"))
            #expect(try await triggers(on: connection) == [])
            #expect(try await ConsentGuards.installed(policy: nil, on: connection) == [])
            #expect(
                try await scalar(
                    "SELECT count(*) FROM pg_proc WHERE pronamespace = 'gallra'::regnamespace AND proname LIKE 'consent_guard_%'",
                    as: Int.self, on: connection) == 0)
            try await connection.execute("INSERT INTO shop.signup (customer_id) VALUES (3)")

            // Active again, then collect: always: the guards go as well.
            try await apply(newsletterYAML(), on: connection)
            #expect(try await triggers(on: connection).count == 4)
            try await apply(newsletterYAML(collect: "always"), on: connection)
            #expect(try await triggers(on: connection) == [])
        }
    }

    @Test("a dry run of apply installs nothing, and a failed apply leaves the guards as they were")
    func atomicity() async throws {
        try await withShop { _, connection in
            let file = PolicyFile(parsing: newsletterYAML(), path: "newsletter.yaml")
            let parsed = try #require(file.policies.first)
            let resolved = try #require(
                parsed.validate(against: try await CatalogReader.read(on: connection)).resolved)
            let store = PolicyStore(connection: connection)
            _ = try await store.apply(
                [(parsed.policy, source: "a.yaml")], guards: [resolved.name: ConsentGuard.guards(of: resolved)],
                dryRun: true)
            #expect(try await triggers(on: connection) == [])

            // Without its resolved guards an active policy that collects with consent is refused outright.
            let unresolved = await #expect(throws: PolicyStoreError.self) {
                try await store.apply([(parsed.policy, source: "a.yaml")])
            }
            #expect(unresolved?.code == .unresolvedGuards)
            #expect(try await scalar("SELECT count(*) FROM gallra.policy", as: Int.self, on: connection) == 0)
        }
    }

    @Test("a guarded table held by a long transaction: the apply gives up after the lock timeout, storing nothing")
    func busyTable() async throws {
        try await withShop { database, connection in
            let other = try await database.connect()
            try await other.execute("BEGIN")
            // An uncommitted insert: the lock every writer of the shop holds until it commits.
            try await other.execute("INSERT INTO shop.note (body) VALUES ('pending')")
            let started = ContinuousClock.now
            let error = await #expect(throws: PolicyStoreError.self) {
                try await apply(newsletterYAML(), on: connection)
            }
            #expect(error?.code == .guardedTableBusy)
            #expect(error?.message.contains("shop.note") == true, "\(error?.message ?? "")")
            #expect(ContinuousClock.now - started < .seconds(30))
            try await other.execute("ROLLBACK")
            await other.close()
            #expect(try await scalar("SELECT count(*) FROM gallra.policy", as: Int.self, on: connection) == 0)
            #expect(try await triggers(on: connection) == [])
        }
    }

    @Test("a partitioned table and names that need quoting are guarded alike")
    func partitionedAndQuoted() async throws {
        try await withShop { _, connection in
            try await execute(
                [
                    """
                    CREATE TABLE shop."Visit Log" (
                        "Customer Id" bigint REFERENCES shop.customer, at timestamptz NOT NULL
                    ) PARTITION BY RANGE (at)
                    """,
                    """
                    CREATE TABLE shop."Visit Log 2026" PARTITION OF shop."Visit Log"
                        FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')
                    """,
                    "CREATE INDEX ON shop.\"Visit Log\" (\"Customer Id\")",
                ], on: connection)
            try await apply(
                newsletterYAML().replacingOccurrences(
                    of: "  - { table: shop.signup, delete: true }",
                    with: "  - { table: shop.\"Visit Log\", delete: true }"), on: connection)
            let installed = try await ConsentGuards.installed(policy: "newsletter", on: connection)
            #expect(installed.map(\.table) == ["shop.\"Visit Log\"", "shop.note"])
            #expect(installed.map(\.columns) == [["Customer Id"], ["customer_ref"]])
            #expect(installed.map(\.intact) == [true, true])
            let refused = await refusal(
                "INSERT INTO shop.\"Visit Log\" VALUES (1, '2026-06-01')", on: connection)
            #expect(refused?.sqlState == SQLState.consentRequired)
            #expect(refused?.message.contains("shop.\"Visit Log\"") == true, "\(refused?.message ?? "")")
            // Straight into the partition: the trigger is cloned onto it.
            let direct = await refusal(
                "INSERT INTO shop.\"Visit Log 2026\" VALUES (1, '2026-06-01')", on: connection)
            #expect(direct?.sqlState == SQLState.consentRequired)
            _ = try await connection.query("SELECT gallra.grant_consent('shop.customer', '1', 'newsletter')")
            try await connection.execute("INSERT INTO shop.\"Visit Log\" VALUES (1, '2026-06-01')")
            try await PolicyStore(connection: connection).disable(try PolicyName("newsletter"))
            #expect(try await triggers(on: connection) == [])
        }
    }
}
