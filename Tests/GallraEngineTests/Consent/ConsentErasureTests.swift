import Foundation
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

@testable import GallraEngine

// A live run removes its subjects' consent events from gallra's registry, whatever the policy's legal basis, in the
// batch's transaction, and counts them in each subject's audit record. At DemoShop.asOf customers 1, 2 and 4 have
// been inactive for more than a year; 3 was seen last month.

/// Customers, the consent policies `newsletter` and `sms`, and `legacy`: an older stored policy of the same table
/// that spells it `app."customer"`, as some of its events do.
private let schema = """
    CREATE SCHEMA app;
    CREATE TABLE app.customer (id bigint PRIMARY KEY, last_seen_at timestamptz, email text);
    INSERT INTO app.customer VALUES
        (1, '2025-01-01 10:00+00', 'one@example.com'),
        (2, '2025-02-01 10:00+00', 'two@example.com'),
        (3, '2026-11-01 10:00+00', 'three@example.com'),
        (4, '2025-03-01 10:00+00', 'four@example.com');
    CREATE SCHEMA shop;
    CREATE TABLE shop.customer (id bigint PRIMARY KEY, email text);
    INSERT INTO shop.customer VALUES (1);
    """

private func consentPolicy(_ name: String, table: String = "app.customer") throws -> Policy {
    try Policy(
        parsing: """
            policy: \(name)
            state: active
            legal_basis: consent
            subject: { table: \(table), key: id }
            expires: { consent_revoked: 30 days, consent: gallra }
            data:
              - { table: \(table), anonymize: { email: redact } }
            """)
}

/// Stores the policies and records events: customer 1 granted and revoked the newsletter and granted sms, and has
/// an event under `legacy`; 2 granted the newsletter; 3 granted both; 4 has none. Customer 1 of `shop.customer`
/// (another table, the same key) granted the newsletter there.
private func withConsentEvents(_ body: (TestDatabase, PostgresConnection) async throws -> Void) async throws {
    try await TestDatabase.with { database, connection in
        try await EdgeCase.load(schema, into: database, on: connection)
        _ = try await PolicyStore(connection: connection).apply([
            (try consentPolicy("newsletter"), source: "newsletter.yaml"),
            (try consentPolicy("sms"), source: "sms.yaml"),
            (try consentPolicy("shop-newsletter", table: "shop.customer"), source: "shop.yaml"),
        ])
        let legacy =
            #"{"policy": "legacy", "state": "disabled", "subject": {"table": "app.\"customer\"", "key": "id"}}"#
        try await execute(
            [
                """
                INSERT INTO gallra.policy (name, version, state, definition, digest)
                VALUES ('legacy', 1, 'disabled', '\(legacy)', repeat('0', 64))
                """,
                "SELECT gallra.grant_consent('app.customer', '1', 'newsletter', 'web')",
                "SELECT gallra.revoke_consent('app.customer', '1', 'newsletter', 'web')",
                "SELECT gallra.grant_consent('app.customer', '1', 'sms', 'app')",
                "SELECT gallra.grant_consent('app.customer', '2', 'newsletter', 'web')",
                "SELECT gallra.grant_consent('app.customer', '3', 'newsletter', 'web')",
                "SELECT gallra.grant_consent('app.customer', '3', 'sms', 'web')",
                "SELECT gallra.grant_consent('shop.customer', '1', 'shop-newsletter', 'web')",
                // As the table's owner: the event of a policy version that spelt the table otherwise.
                """
                INSERT INTO gallra.consent_event (subject_table, subject_key, policy, ordinal, policy_version, event)
                VALUES ('app."customer"', '1', 'legacy', 1, 1, 'granted')
                """,
            ], on: connection)
        try await body(database, connection)
    }
}

/// `table:key policy #ordinal` of every event, in id order.
private func events(on connection: PostgresConnection) async throws -> [String] {
    try await connection.query(
        """
        SELECT subject_table || ':' || subject_key || ' ' || policy || ' #' || ordinal AS e
        FROM gallra.consent_event ORDER BY id
        """
    ).map { try $0.decode("e", as: String.self) }
}

/// The audit counts of an `app.customer` subject, recomputed from the test key.
private func auditCounts(customer id: Int, on connection: PostgresConnection) async throws -> [[AuditCount]] {
    let digest = Digest.hex(Digest.hmacSHA256(key: DemoShop.keyBytes, message: Array("app.customer:\(id)".utf8)))
    return try await AuditTrail.lookup(digest: digest, on: connection).map(\.counts)
}

private let inactive = """
    policy: inactive
    state: active
    subject: { table: app.customer, key: id }
    expires: { inactive_for: 1 year, activity: last_seen_at }
    data:
      - { table: app.customer, ACTION }
    limits: { max_fraction: 1, batch_size: 2 }
    """

@Suite("A live run erases its subjects' consent events")
struct ConsentErasureTests {
    @Test(
        "every event of a processed subject goes, under every policy and spelling, counted in its audit record",
        arguments: ["delete: true", "anonymize: { email: redact }"])
    func erasedAndAudited(action: String) async throws {
        try await withConsentEvents { _, connection in
            let policy = try await EdgeCase.policy(
                inactive.replacingOccurrences(of: "ACTION", with: action), on: connection)
            let engine = try DemoShop.engine(connection)
            let dry = try await engine.run([policy], options: DemoShop.options(.dry))
            #expect(dry.policies.first?.consentEvents == 5)
            let report = try await engine.run([policy], options: DemoShop.options(.live))
            #expect(report.outcome == .done)
            #expect(report.policies.first?.processed == 3)
            #expect(report.policies.first?.consentEvents == 5)

            // Oracle: 3's events and the other table's stay; nothing of 1, 2 or 4 is left.
            #expect(
                try await events(on: connection) == [
                    "app.customer:3 newsletter #1", "app.customer:3 sms #1", "shop.customer:1 shop-newsletter #1",
                ])
            #expect(
                try await scalar(
                    """
                    SELECT count(*) FROM gallra.consent_event
                    WHERE subject_key IN ('1', '2', '4') AND parse_ident(subject_table) = '{app,customer}'
                    """, as: Int.self, on: connection) == 0)

            let acted = action.hasPrefix("delete") ? AuditCount.Action.deleted : .anonymized
            let erased = { (rows: Int) in AuditCount(table: "gallra.consent_event", action: .deleted, rows: rows) }
            #expect(
                try await auditCounts(customer: 1, on: connection) == [
                    [AuditCount(table: "app.customer", action: acted, rows: 1), erased(4)]
                ])
            #expect(
                try await auditCounts(customer: 2, on: connection) == [
                    [AuditCount(table: "app.customer", action: acted, rows: 1), erased(1)]
                ])
            // No events: no count of them.
            #expect(
                try await auditCounts(customer: 4, on: connection) == [
                    [AuditCount(table: "app.customer", action: acted, rows: 1)]
                ])
            #expect(try await auditCounts(customer: 3, on: connection) == [])
            #expect(try await AuditTrail.verify(on: connection).isIntact)
        }
    }

    @Test("a batch that rolls back leaves every consent event in place")
    func rolledBackBatchKeepsEvents() async throws {
        try await withConsentEvents { _, connection in
            // Fails at COMMIT, after the batch's steps, erasure and audit block.
            try await execute(
                [
                    """
                    CREATE FUNCTION app.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION 'customers are kept'; END $$
                    """,
                    """
                    CREATE CONSTRAINT TRIGGER kept AFTER DELETE ON app.customer DEFERRABLE INITIALLY DEFERRED
                    FOR EACH ROW EXECUTE FUNCTION app.refuse()
                    """,
                ], on: connection)
            let before = try await events(on: connection)
            #expect(before.count == 8)
            let policy = try await EdgeCase.policy(
                inactive.replacingOccurrences(of: "ACTION", with: "delete: true"), on: connection)
            var options = DemoShop.options(.live)
            options.maxAttempts = 1
            let report = try await DemoShop.engine(connection).run([policy], options: options)
            #expect(report.outcome != .done)
            #expect(report.policies.first?.processed == 0)
            #expect(try await events(on: connection) == before)
            #expect(try await scalar("SELECT count(*) FROM gallra.audit_subject", as: Int.self, on: connection) == 0)
            #expect(try await scalar("SELECT count(*) FROM app.customer", as: Int.self, on: connection) == 4)
        }
    }
}
