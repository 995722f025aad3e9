import Foundation
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

@testable import GallraEngine

/// A shop with customers and club members, gallra's schema, and policies: `newsletter` and `sms` ask for consent,
/// `club` asks for it on another table, `inactive-customers` states no legal basis, `bare` names its table
/// without a schema.
private func withRegistry(_ body: (TestDatabase, PostgresConnection) async throws -> Void) async throws {
    try await TestDatabase.with { database, connection in
        try await execute(
            [
                "CREATE SCHEMA shop",
                "CREATE TABLE shop.customer (id bigint PRIMARY KEY, last_seen_at timestamptz)",
                "CREATE TABLE shop.wishlist_item (id int PRIMARY KEY, customer_id bigint REFERENCES shop.customer)",
                "CREATE TABLE shop.member (code text PRIMARY KEY, joined_at timestamptz)",
                "INSERT INTO shop.customer (id) VALUES (1), (2), (3)",
                "INSERT INTO shop.member (code) VALUES ('M-1')",
            ], on: connection)
        try await Schema.migrate(on: connection)
        let club = try Policy(
            parsing: """
                policy: club
                legal_basis: consent
                subject: { table: shop.member, key: code }
                expires: { older_than: 2 years, created: joined_at }
                data:
                  - { table: shop.member, delete: true }
                """)
        let bare = try Policy(
            parsing: """
                policy: bare
                legal_basis: consent
                subject: { table: customer, key: id }
                expires: { inactive_for: 1 year, activity: last_seen_at }
                data:
                  - { table: customer, delete: true }
                """)
        _ = try await PolicyStore(connection: connection).apply([
            (try policy("newsletter", extra: "legal_basis: consent"), source: "newsletter.yaml"),
            (try policy("sms", extra: "legal_basis: consent"), source: "sms.yaml"),
            (try policy("inactive-customers"), source: "inactive.yaml"),
            (club, source: "club.yaml"), (bare, source: "bare.yaml"),
        ])
        try await body(database, connection)
    }
}

/// One consent event as `gallra.consent_history` returns it.
private struct HistoryEntry: Equatable, CustomStringConvertible {
    var event: String
    var policy: String
    var version: Int
    var source: String?
    var evidence: String?

    var description: String { "\(event) \(policy) v\(version) \(source ?? "-") \(evidence ?? "-")" }
}

private func history(
    _ table: String, _ key: String, _ policy: String? = nil, on connection: PostgresConnection
) async throws -> [HistoryEntry] {
    try await connection.query(
        "SELECT * FROM gallra.consent_history($1, $2, $3)",
        [.text(table), .text(key), policy.map { .text($0) } ?? .null]
    ).map {
        HistoryEntry(
            event: try $0.decode("event"), policy: try $0.decode("policy_name"),
            version: try $0.decode("policy_version"),
            source: try $0.decode("source"), evidence: try $0.decode("evidence"))
    }
}

private func hasConsent(_ key: String, _ policy: String = "newsletter", on connection: PostgresConnection)
    async throws -> Bool
{
    try await scalar(
        "SELECT gallra.has_consent('shop.customer', $1, $2)", [.text(key), .text(policy)], as: Bool.self,
        on: connection)
}

private func eventCount(on connection: PostgresConnection) async throws -> Int {
    try await scalar("SELECT count(*) FROM gallra.consent_event", as: Int.self, on: connection)
}

@Suite("The consent registry and its SQL functions")
struct ConsentRegistryTests {
    @Test("grant, check, revoke and read back: the history holds each event with its version, source and evidence")
    func happyPath() async throws {
        try await withRegistry { _, connection in
            #expect(try await hasConsent("1", on: connection) == false)
            let granted = try await scalar(
                "SELECT gallra.grant_consent('shop.customer', '1', 'newsletter', 'web', 'form v3')", as: Int.self,
                on: connection)
            #expect(try await hasConsent("1", on: connection))
            #expect(try await hasConsent("2", on: connection) == false)
            #expect(try await hasConsent("1", "sms", on: connection) == false)

            let revoked = try await scalar(
                "SELECT gallra.revoke_consent('shop.customer', '1', 'newsletter', source => 'store')", as: Int.self,
                on: connection)
            #expect(revoked > granted)
            #expect(try await hasConsent("1", on: connection) == false)
            // The key as PostgreSQL prints it: 001 is customer 1.
            _ = try await connection.query("SELECT gallra.grant_consent('shop.customer', '001', 'newsletter', 'app')")
            _ = try await connection.query(
                "SELECT gallra.grant_consent(subject_table => 'shop.customer', subject_key => '1', policy => 'sms')")
            #expect(
                try await history("shop.customer", "1", "newsletter", on: connection) == [
                    HistoryEntry(
                        event: "granted", policy: "newsletter", version: 1, source: "web", evidence: "form v3"),
                    HistoryEntry(event: "revoked", policy: "newsletter", version: 1, source: "store", evidence: nil),
                    HistoryEntry(event: "granted", policy: "newsletter", version: 1, source: "app", evidence: nil),
                ])
            // Without a policy: every policy on the table, in the order recorded.
            #expect(
                try await history("shop.customer", "1", on: connection).map(\.description) == [
                    "granted newsletter v1 web form v3", "revoked newsletter v1 store -", "granted newsletter v1 app -",
                    "granted sms v1 - -",
                ])
            #expect(try await history("shop.customer", "2", on: connection) == [])

            // Oracle: the rows and the view, read in SQL.
            let rows = try await connection.query(
                """
                SELECT subject_table, subject_key, policy, ordinal, event, recorded_by = session_user AS by_me
                FROM gallra.consent_event ORDER BY id
                """)
            #expect(
                try rows.map {
                    "\(try $0.decode("subject_table", as: String.self)):\(try $0.decode("subject_key", as: String.self)) "
                        + "\(try $0.decode("policy", as: String.self)) #\(try $0.decode("ordinal", as: Int.self)) "
                        + "\(try $0.decode("event", as: String.self)) \(try $0.decode("by_me", as: Bool.self))"
                } == [
                    "shop.customer:1 newsletter #1 granted true", "shop.customer:1 newsletter #2 revoked true",
                    "shop.customer:1 newsletter #3 granted true", "shop.customer:1 sms #1 granted true",
                ])
            let inForce = try await connection.query(
                "SELECT policy, source FROM gallra.consent_in_force ORDER BY policy")
            #expect(try inForce.map { try $0.decode("policy", as: String.self) } == ["newsletter", "sms"])
            #expect(try inForce.map { try $0.decode("source", as: String?.self) } == ["app", nil])

            // Another subject table, with a text key.
            _ = try await connection.query("SELECT gallra.grant_consent('shop.member', 'M-1', 'club', 'club')")
            #expect(
                try await scalar(
                    "SELECT gallra.has_consent('shop.member', 'M-1', 'club')", as: Bool.self, on: connection))
        }
    }

    @Test("granting or revoking what is already in force records nothing and returns the same event")
    func idempotent() async throws {
        try await withRegistry { _, connection in
            let grant = "SELECT gallra.grant_consent('shop.customer', '2', 'newsletter', 'web')"
            let revoke = "SELECT gallra.revoke_consent('shop.customer', '2', 'newsletter', 'web')"
            // Nothing to revoke yet: no event, null.
            #expect(try await scalar(revoke, as: Int?.self, on: connection) == nil)
            #expect(try await eventCount(on: connection) == 0)

            let first = try await scalar(grant, as: Int.self, on: connection)
            #expect(try await scalar(grant, as: Int.self, on: connection) == first)
            #expect(try await scalar(grant, as: Int.self, on: connection) == first)
            #expect(try await eventCount(on: connection) == 1)

            let revoked = try await scalar(revoke, as: Int.self, on: connection)
            #expect(try await scalar(revoke, as: Int.self, on: connection) == revoked)
            #expect(try await eventCount(on: connection) == 2)

            // New terms (a new version of the policy): granting again records acceptance of them.
            let regranted = try await scalar(grant, as: Int.self, on: connection)
            _ = try await PolicyStore(connection: connection).apply([
                (try policy("newsletter", inactiveFor: "2 years", extra: "legal_basis: consent"), source: "n.yaml")
            ])
            #expect(try await hasConsent("2", on: connection))
            let accepted = try await scalar(grant, as: Int.self, on: connection)
            #expect(accepted != regranted)
            #expect(try await scalar(grant, as: Int.self, on: connection) == accepted)
            #expect(
                try await history("shop.customer", "2", "newsletter", on: connection).map(\.description) == [
                    "granted newsletter v1 web -", "revoked newsletter v1 web -", "granted newsletter v1 web -",
                    "granted newsletter v2 web -",
                ])
        }
    }

    /// A call that is refused, and the SQLSTATE it must get.
    struct Refusal: Sendable, CustomTestStringConvertible {
        var sql: String
        var state: SQLState
        var testDescription: String { "\(state): \(sql)" }
    }

    static let refusals: [Refusal] = {
        let evidence = String(repeating: "é", count: 513)  // 1026 bytes
        var cases: [Refusal] = []
        for function in ["grant_consent", "revoke_consent", "has_consent"] {
            func call(_ arguments: String) -> String { "SELECT gallra.\(function)(\(arguments))" }
            cases += [
                Refusal(sql: call("'shop.customer', '1', 'no-such-policy'"), state: .consentUnknownPolicy),
                Refusal(sql: call("'shop.member', 'M-1', 'newsletter'"), state: .consentOtherSubjectTable),
                Refusal(sql: call("'customer', '1', 'newsletter'"), state: .consentOtherSubjectTable),
                Refusal(sql: call("'shop.customer', 'x', 'newsletter'"), state: .consentUnknownSubject),
                Refusal(sql: call("'shop.customer', '1', 'inactive-customers'"), state: .consentNotLegalBasis),
                Refusal(sql: call("'customer', '1', 'bare'"), state: .consentUnqualifiedSubjectTable),
                Refusal(sql: call("NULL, '1', 'newsletter'"), state: .consentInvalidArgument),
                Refusal(sql: call("'', '1', 'newsletter'"), state: .consentInvalidArgument),
                Refusal(sql: call("'shop.customer', NULL, 'newsletter'"), state: .consentInvalidArgument),
                Refusal(sql: call("'shop.customer', '', 'newsletter'"), state: .consentInvalidArgument),
                Refusal(sql: call("'shop.customer', '1', NULL"), state: .consentInvalidArgument),
                Refusal(sql: call("'shop.customer', '1', ''"), state: .consentInvalidArgument),
                Refusal(sql: call("'shop.\"customer', '1', 'newsletter'"), state: .consentInvalidArgument),
            ]
            if function != "has_consent" {
                cases += [
                    // A subject that does not exist is refused where consent is recorded.
                    Refusal(sql: call("'shop.customer', '99', 'newsletter'"), state: .consentUnknownSubject),
                    Refusal(sql: call("'shop.customer', '1', 'newsletter', 'Web'"), state: .consentInvalidArgument),
                    Refusal(sql: call("'shop.customer', '1', 'newsletter', ''"), state: .consentInvalidArgument),
                    Refusal(
                        sql: call("'shop.customer', '1', 'newsletter', 'web', ''"), state: .consentInvalidArgument),
                    Refusal(
                        sql: call("'shop.customer', '1', 'newsletter', 'web', '\(evidence)'"),
                        state: .consentEvidenceTooLong),
                ]
            }
        }
        let history = "SELECT * FROM gallra.consent_history"
        cases += [
            Refusal(sql: "\(history)('shop.customer', '1', 'no-such-policy')", state: .consentUnknownPolicy),
            Refusal(sql: "\(history)('shop.member', 'M-1', 'newsletter')", state: .consentOtherSubjectTable),
            Refusal(sql: "\(history)('shop.product', '1')", state: .consentOtherSubjectTable),
            Refusal(sql: "\(history)('shop.customer', 'x', 'newsletter')", state: .consentUnknownSubject),
            Refusal(sql: "\(history)(NULL, '1')", state: .consentInvalidArgument),
            Refusal(sql: "\(history)('shop.customer', '')", state: .consentInvalidArgument),
            Refusal(sql: "\(history)('shop.customer', '1', '')", state: .consentInvalidArgument),
            // Disabled: revoking and checking stay possible, granting does not.
            Refusal(sql: "SELECT gallra.grant_consent('shop.customer', '1', 'sms')", state: .consentPolicyDisabled),
        ]
        return cases
    }()

    @Test("every bad call is refused with gallra's own SQLSTATE and a hint, and records nothing", arguments: refusals)
    func refused(_ refusal: Refusal) async throws {
        try await withRegistry { _, connection in
            _ = try await connection.query("SELECT gallra.grant_consent('shop.customer', '1', 'sms')")
            try await PolicyStore(connection: connection).disable(PolicyName("sms"))
            let error = await #expect(throws: PostgresError.self) { try await connection.query(refusal.sql) }
            #expect(error?.sqlState == refusal.state, "\(error.map { String(reflecting: $0) } ?? "")")
            #expect(error?.sqlState?.errorClass == .gallraConsent)
            #expect(error?.hint?.isEmpty == false)
            #expect(try await eventCount(on: connection) == 1)
            // A disabled policy can still be checked and revoked.
            #expect(try await hasConsent("1", "sms", on: connection))
            _ = try await connection.query("SELECT gallra.revoke_consent('shop.customer', '1', 'sms')")
            #expect(try await hasConsent("1", "sms", on: connection) == false)
        }
    }

    @Test("a login granted gallra_app can record and read consent, and nothing else of gallra's")
    func appRole() async throws {
        let role = "gallra_t_shop_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try await TestServer.admin()
        do {
            try await withRegistry { database, connection in
                // gallra_app exists once a database is migrated (roles belong to the cluster).
                try await connection.execute("CREATE ROLE \(role) LOGIN IN ROLE gallra_app")
                let shop = try await PostgresConnection.connect(database.conninfo + " user=\(role)")
                do {
                    #expect(try await scalar("SELECT current_user::text", as: String.self, on: shop) == role)
                    let id = try await scalar(
                        "SELECT gallra.grant_consent('shop.customer', '3', 'newsletter', 'web')", as: Int.self,
                        on: shop)
                    #expect(try await hasConsent("3", on: shop))
                    #expect(try await history("shop.customer", "3", on: shop).count == 1)
                    _ = try await shop.query("SELECT gallra.revoke_consent('shop.customer', '3', 'newsletter')")
                    #expect(try await hasConsent("3", on: shop) == false)
                    #expect(
                        try await scalar(
                            "SELECT recorded_by FROM gallra.consent_event WHERE id = $1", [.int64(Int64(id))],
                            as: String.self, on: connection) == role)

                    // Every table and view of gallra's: no read, no write.
                    let relations = try await connection.query(
                        """
                        SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relkind = 'r' AS is_table,
                               (SELECT quote_ident(a.attname) FROM pg_attribute AS a
                                WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.attidentity = ''
                                ORDER BY a.attnum LIMIT 1) AS first_column
                        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                        WHERE n.nspname = 'gallra' AND c.relkind IN ('r', 'v') ORDER BY 1
                        """)
                    #expect(relations.count == 17)
                    for relation in relations {
                        let name = try relation.decode("name", as: String.self)
                        var statements = ["SELECT * FROM \(name)"]
                        if try relation.decode("is_table", as: Bool.self) {
                            let column = try relation.decode("first_column", as: String.self)
                            statements += [
                                "INSERT INTO \(name) DEFAULT VALUES",
                                "UPDATE \(name) SET \(column) = \(column) WHERE false",
                                "DELETE FROM \(name) WHERE false", "TRUNCATE \(name)",
                            ]
                        }
                        for statement in statements {
                            let error = await #expect(throws: PostgresError.self, "\(statement)") {
                                try await shop.execute(statement)
                            }
                            #expect(error?.sqlState == .insufficientPrivilege, "\(statement): \(error?.message ?? "")")
                        }
                    }
                    // Every other function of gallra's.
                    let functions = try await connection.query(
                        """
                        SELECT format('SELECT %s(%s)', p.oid::regproc,
                                      (SELECT string_agg('NULL::' || format_type(t, NULL), ', ')
                                       FROM unnest(p.proargtypes) AS t)) AS call
                        FROM pg_proc AS p
                        WHERE p.pronamespace = 'gallra'::regnamespace
                          AND p.proname NOT IN ('grant_consent', 'revoke_consent', 'has_consent', 'consent_history',
                                                'request_erasure', 'erasure_status', 'cancel_erasure')
                        ORDER BY 1
                        """)
                    #expect(functions.count == 7)
                    for function in functions {
                        let call = try function.decode("call", as: String.self)
                        let error = await #expect(throws: PostgresError.self, "\(call)") { try await shop.query(call) }
                        #expect(error?.sqlState == .insufficientPrivilege, "\(call): \(error?.message ?? "")")
                    }

                    // Even given DELETE by mistake, gallra_app cannot use the erasure's way past the trigger.
                    try await connection.execute("GRANT DELETE, UPDATE, TRUNCATE ON gallra.consent_event TO \(role)")
                    try await shop.execute("SET gallra.erasure = on")
                    for statement in [
                        "DELETE FROM gallra.consent_event", "UPDATE gallra.consent_event SET source = NULL",
                        "TRUNCATE gallra.consent_event",
                    ] {
                        let error = await #expect(throws: PostgresError.self, "\(statement)") {
                            try await shop.execute(statement)
                        }
                        #expect(error?.sqlState == .restrictViolation, "\(statement): \(error?.message ?? "")")
                    }
                    try await connection.execute("REVOKE DELETE, UPDATE, TRUNCATE ON gallra.consent_event FROM \(role)")
                    #expect(try await eventCount(on: connection) == 2)
                } catch {
                    await shop.close()
                    throw error
                }
                await shop.close()
            }
        } catch {
            _ = try? await admin.execute("DROP ROLE IF EXISTS \(role)")
            await admin.close()
            throw error
        }
        try await admin.execute("DROP ROLE \(role)")
        await admin.close()
    }

    @Test("consent events are append-only: UPDATE, DELETE and TRUNCATE are refused, but the owner's erasure")
    func appendOnly() async throws {
        try await withRegistry { _, connection in
            _ = try await connection.query("SELECT gallra.grant_consent('shop.customer', '1', 'newsletter')")
            _ = try await connection.query("SELECT gallra.grant_consent('shop.customer', '2', 'newsletter')")
            for statement in [
                "UPDATE gallra.consent_event SET event = 'revoked'", "DELETE FROM gallra.consent_event",
                "DELETE FROM gallra.consent_event WHERE subject_key = '1'", "TRUNCATE gallra.consent_event",
            ] {
                let error = await #expect(throws: PostgresError.self, "\(statement)") {
                    try await connection.execute(statement)
                }
                #expect(error?.sqlState == .restrictViolation)
                #expect(error?.message.hasPrefix("gallra.consent_event is append-only: ") == true)
            }
            #expect(try await eventCount(on: connection) == 2)
            // gallra's erasure: the owner, saying so for its transaction.
            let erased = try await connection.transaction { connection in
                try await connection.execute("SET LOCAL gallra.erasure = on")
                return try await connection.execute("DELETE FROM gallra.consent_event WHERE subject_key = '1'")
            }
            #expect(erased == 1)
            #expect(
                try await scalar(
                    "SELECT string_agg(subject_key, ',') FROM gallra.consent_event", as: String.self, on: connection)
                    == "2")
            // The setting ends with its transaction.
            await #expect(throws: PostgresError.self) {
                try await connection.execute("DELETE FROM gallra.consent_event")
            }
        }
    }

    @Test("gallra.erase_consent deletes the keys' events under every policy, and only as the owner's erasure")
    func eraseConsent() async throws {
        let role = "gallra_t_shop_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try await TestServer.admin()
        do {
            try await withRegistry { database, connection in
                for call in [
                    "grant_consent('shop.customer', '1', 'newsletter')",
                    "revoke_consent('shop.customer', '1', 'newsletter')", "grant_consent('shop.customer', '1', 'sms')",
                    "grant_consent('shop.customer', '2', 'newsletter')", "grant_consent('shop.customer', '3', 'sms')",
                    "grant_consent('shop.member', 'M-1', 'club')",
                ] {
                    _ = try await connection.query("SELECT gallra.\(call)")
                }
                try await connection.execute("CREATE ROLE \(role) LOGIN IN ROLE gallra_app")
                let shop = try await PostgresConnection.connect(database.conninfo + " user=\(role)")
                let error = await #expect(throws: PostgresError.self) {
                    try await shop.query("SELECT * FROM gallra.erase_consent('shop.customer', '{1}')")
                }
                #expect(error?.sqlState == .insufficientPrivilege)
                await shop.close()
                #expect(try await eventCount(on: connection) == 6)

                // Another spelling of the table; a key without events and one of no subject are left out.
                let erased = try await connection.query(
                    """
                    SELECT subject_key, events FROM gallra.erase_consent('Shop."customer"', '{1,2,4,x}')
                    ORDER BY subject_key
                    """
                ).map { "\(try $0.decode("subject_key", as: String.self)):\(try $0.decode("events", as: Int.self))" }
                #expect(erased == ["1:3", "2:1"])
                #expect(
                    try await scalar(
                        """
                        SELECT string_agg(subject_table || ':' || subject_key, ',' ORDER BY id)
                        FROM gallra.consent_event
                        """, as: String.self, on: connection) == "shop.customer:3,shop.member:M-1")
                // No keys: nothing. No table: refused.
                #expect(
                    try await connection.query("SELECT * FROM gallra.erase_consent('shop.customer', '{}')").isEmpty)
                let refused = await #expect(throws: PostgresError.self) {
                    try await connection.query("SELECT * FROM gallra.erase_consent(NULL, '{3}')")
                }
                #expect(refused?.sqlState == "22004")  // null_value_not_allowed

                // The erasure's setting ends with the call: the owner's own DELETE in the same transaction is refused.
                let after = await #expect(throws: PostgresError.self) {
                    try await connection.transaction { connection in
                        _ = try await connection.query("SELECT * FROM gallra.erase_consent('shop.member', '{M-1}')")
                        try await connection.execute("DELETE FROM gallra.consent_event")
                    }
                }
                #expect(after?.sqlState == .restrictViolation)
                #expect(try await eventCount(on: connection) == 2)
                for statement in [
                    "DELETE FROM gallra.consent_event", "UPDATE gallra.consent_event SET source = NULL",
                    "TRUNCATE gallra.consent_event",
                ] {
                    let error = await #expect(throws: PostgresError.self, "\(statement)") {
                        try await connection.execute(statement)
                    }
                    #expect(error?.sqlState == .restrictViolation, "\(statement)")
                }
                #expect(try await eventCount(on: connection) == 2)
            }
        } catch {
            _ = try? await admin.execute("DROP ROLE IF EXISTS \(role)")
            await admin.close()
            throw error
        }
        try await admin.execute("DROP ROLE \(role)")
        await admin.close()
    }

    @Test("a grant and a revoke of one subject from two connections take turns; both commit, in order")
    func concurrentGrantAndRevoke() async throws {
        try await withRegistry { database, connection in
            let first = try await database.connect()
            let second = try await database.connect()
            try await first.execute("BEGIN")
            _ = try await first.query("SELECT gallra.grant_consent('shop.customer', '1', 'newsletter', 'web')")
            try await second.execute("BEGIN")
            async let revoked = second.query("SELECT gallra.revoke_consent('shop.customer', '1', 'newsletter', 'app')")
            var waiting = 0
            for _ in 0..<200 where waiting < 1 {
                waiting = try await scalar(
                    """
                    SELECT count(*) FROM pg_locks AS l JOIN pg_database AS d ON d.oid = l.database
                    WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()
                    """, as: Int.self,
                    on: connection)
                if waiting < 1 { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(waiting == 1)
            try await first.execute("COMMIT")
            _ = try await revoked
            try await second.execute("COMMIT")
            #expect(
                try await history("shop.customer", "1", on: connection).map(\.description) == [
                    "granted newsletter v1 web -", "revoked newsletter v1 app -",
                ])
            #expect(try await hasConsent("1", on: connection) == false)

            // Under REPEATABLE READ the second cannot see the first's event: it fails and can be retried.
            try await first.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            try await second.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            #expect(try await hasConsent("1", on: second) == false)
            _ = try await first.query("SELECT gallra.grant_consent('shop.customer', '1', 'newsletter', 'web')")
            let regranted = Task {
                try await second.query("SELECT gallra.grant_consent('shop.customer', '1', 'newsletter')")
            }
            try await Task.sleep(for: .milliseconds(100))
            try await first.execute("COMMIT")
            let error = await #expect(throws: PostgresError.self) { _ = try await regranted.value }
            #expect(error?.sqlState == .serializationFailure)
            try await second.execute("ROLLBACK")
            #expect(try await eventCount(on: connection) == 3)
            #expect(try await hasConsent("1", on: connection))
            await first.close()
            await second.close()
        }
    }

    @Test(
        "a grant holds the subject row while it records: a delete of the subject waits for it, then the grant is gone with it"
    )
    func grantLocksTheSubject() async throws {
        try await withRegistry { database, connection in
            let shop = try await database.connect()
            let purge = try await database.connect()
            try await shop.execute("BEGIN")
            _ = try await shop.query("SELECT gallra.grant_consent('shop.customer', '2', 'newsletter', 'web')")
            // A batch picks due subjects FOR UPDATE SKIP LOCKED: it passes the subject by.
            try await purge.execute("BEGIN")
            #expect(
                try await purge.query("SELECT id FROM shop.customer WHERE id = 2 FOR UPDATE SKIP LOCKED").count == 0)
            // A plain delete waits for the grant's transaction.
            try await purge.execute("SET LOCAL lock_timeout = '200ms'")
            let blocked = await #expect(throws: PostgresError.self) {
                try await purge.execute("DELETE FROM shop.customer WHERE id = 2")
            }
            #expect(blocked?.sqlState == .lockNotAvailable)
            try await purge.execute("ROLLBACK")
            // The shop may still update the row's other columns meanwhile.
            try await connection.execute("UPDATE shop.customer SET last_seen_at = now() WHERE id = 2")
            try await shop.execute("COMMIT")

            // The other way round: a batch holds the subject, and the grant waits, then finds it gone.
            try await purge.execute("BEGIN")
            try await purge.execute("DELETE FROM shop.customer WHERE id = 3")
            let late = Task {
                try await shop.query("SELECT gallra.grant_consent('shop.customer', '3', 'newsletter', 'web')")
            }
            try await Task.sleep(for: .milliseconds(200))
            try await purge.execute("COMMIT")
            let gone = await #expect(throws: PostgresError.self) { _ = try await late.value }
            #expect(gone?.sqlState == SQLState.consentUnknownSubject)
            #expect(try await hasConsent("3", on: connection) == false)
            await shop.close()
            await purge.close()
        }
    }
}
