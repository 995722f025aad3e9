import Foundation
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

@testable import GallraEngine

// Customers at DemoShop.asOf (2026-11-29 00:00 UTC), under a one-year inactivity policy that keeps the customer row
// (its e-mail redacted) and a consent policy reading gallra's registry:
// 1 last seen 2024, its address shared with 3: due, address retained; 2 notes.
// 2 last seen 2024, on legal hold: exempt by except[0].
// 3 last seen 2026-06-01: not due until 2027-06-01; consent granted.
// 4 never seen: no date.
// 5 last seen 2024, an open dispute: exempt by except[1].
// 6 last seen 2024, its own address: due, address anonymized; consent revoked in June: due under the consent policy.
@Suite("Explaining one subject")
struct SubjectExplanationTests {
    static let schema = """
        CREATE SCHEMA app;
        CREATE TABLE app.address (id bigint PRIMARY KEY, street text);
        CREATE TABLE app.customer (
            id bigint PRIMARY KEY, email text, last_seen_at timestamptz,
            legal_hold boolean NOT NULL DEFAULT false, address_id bigint REFERENCES app.address);
        CREATE INDEX ON app.customer (address_id);
        CREATE TABLE app.note (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES app.customer, body text);
        CREATE INDEX ON app.note (customer_id);
        CREATE TABLE app.dispute (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES app.customer, open boolean);
        CREATE INDEX ON app.dispute (customer_id);
        INSERT INTO app.address VALUES (1, 'Shared Street 1'), (6, 'Own Road 6');
        INSERT INTO app.customer VALUES
            (1, 'one@example.com', '2024-01-01 00:00+00', false, 1),
            (2, 'two@example.com', '2024-01-01 00:00+00', true, NULL),
            (3, 'three@example.com', '2026-06-01 00:00+00', false, 1),
            (4, 'four@example.com', NULL, false, NULL),
            (5, 'five@example.com', '2024-01-01 00:00+00', false, NULL),
            (6, 'six@example.com', '2024-01-01 00:00+00', false, 6);
        INSERT INTO app.note VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 3, 'c');
        INSERT INTO app.dispute VALUES (1, 5, true), (2, 1, false);
        """

    static let events = """
        INSERT INTO gallra.consent_event
            (subject_table, subject_key, policy, ordinal, policy_version, event, recorded_at, source)
        VALUES
            ('app.customer', '3', 'newsletter', 1, 1, 'granted', '2025-01-01 10:00+00', 'web'),
            ('app.customer', '6', 'newsletter', 1, 1, 'granted', '2025-01-01 10:00+00', 'web'),
            ('app.customer', '6', 'newsletter', 2, 1, 'revoked', '2026-06-01 10:00+00', 'web')
        """

    static let inactive = """
        policy: inactive
        state: active
        subject: { table: app.customer, key: id }
        expires: { inactive_for: 1 year, activity: last_seen_at }
        except:
          - { column: legal_hold, is: true }
          - { exists: app.dispute, where: { open: { is: true } } }
        data:
          - { table: app.note, delete: true }
          - { table: app.address, anonymize: { street: redact } }
          - { table: app.customer, anonymize: { email: redact } }
        limits: { max_fraction: 1 }
        """

    static let newsletter = """
        policy: newsletter
        state: draft
        legal_basis: consent
        subject: { table: app.customer, key: id }
        expires: { consent_revoked: 30 days, consent: gallra }
        data:
          - { table: app.note, delete: true }
        limits: { max_fraction: 1 }
        """

    static let table = QualifiedName(schema: "app", name: "customer")

    static func explain(
        _ key: String, _ policies: [RunPolicy], on connection: PostgresConnection, key digest: Bool = false
    ) async throws -> SubjectExplanation {
        try await DemoShop.engine(connection).explain(
            table: table, key: key, policies: policies, disabled: [], asOf: PostgresTimestamp(DemoShop.asOf),
            digester: digest ? try DemoShop.auditKey().digester : nil)
    }

    static func standing(
        _ key: String, _ policies: [RunPolicy], on connection: PostgresConnection, policy name: String = "inactive"
    ) async throws -> PolicyStanding {
        let explanation = try await explain(key, policies, on: connection)
        return try #require(explanation.policies.first { $0.policy == name })
    }

    static func load(on database: TestDatabase, _ connection: PostgresConnection) async throws -> [RunPolicy] {
        try await EdgeCase.load(schema, into: database, on: connection)
        try await execute([events], on: connection)
        return [
            try await EdgeCase.policy(inactive, on: connection), try await EdgeCase.policy(newsletter, on: connection),
        ]
    }

    @Test func aDueSubjectWithItsRowsAndWhatKeepsTheSharedAddress() async throws {
        try await TestDatabase.with { database, connection in
            let policies = try await Self.load(on: database, connection)
            let standing = try await Self.standing("1", policies, on: connection)
            #expect(standing.verdict == .due)
            #expect(standing.dateSource == "last_seen_at")
            #expect(standing.date == "2024-01-01T00:00:00.000Z")
            #expect(standing.expiresAt == "2025-01-01T00:00:00.000Z")
            #expect(standing.exemptions.isEmpty)
            let steps = Dictionary(uniqueKeysWithValues: standing.steps.map { ($0.table, $0) })
            #expect(steps["app.note"]?.rows == 2)
            #expect(steps["app.address"]?.rows == 0)
            #expect(steps["app.address"]?.retained == 1)
            #expect(
                steps["app.address"]?.retainedBy
                    == [
                        .init(
                            table: "app.customer", columns: ["address_id"], foreignKey: "customer_address_id_fkey",
                            rows: 1)
                    ])
            #expect(steps["app.customer"]?.rows == 1)
            // Customer 6's address is its own: anonymized.
            let six = try await Self.standing("6", policies, on: connection)
            #expect(six.steps.first { $0.table == "app.address" }.map { ($0.rows, $0.retained) } ?? (0, 0) == (1, 0))
        }
    }

    @Test func aDueSubjectOfAPolicyTheLimitsRefuse() async throws {
        try await TestDatabase.with { database, connection in
            var policies = try await Self.load(on: database, connection)
            #expect(try await Self.standing("1", policies, on: connection).refused == nil)
            policies[0] = try await EdgeCase.policy(
                Self.inactive.replacingOccurrences(of: "{ max_fraction: 1 }", with: "{ max_subjects_per_run: 1 }"),
                on: connection)
            let standing = try await Self.standing("1", policies, on: connection)
            #expect(standing.verdict == .due)
            // Customers 1 and 6 are due.
            #expect(standing.refused?.expiring == 2)
            #expect(standing.refused?.maxSubjectsPerRun == 1)
        }
    }

    @Test func notYetDueSaysWhen() async throws {
        try await TestDatabase.with { database, connection in
            let policies = try await Self.load(on: database, connection)
            let standing = try await Self.standing("3", policies, on: connection)
            #expect(standing.verdict == .notYet)
            #expect(standing.expiresAt == "2027-06-01T00:00:00.000Z")
            #expect(standing.steps.allSatisfy { $0.rows == 0 && $0.retained == 0 })
        }
    }

    @Test(arguments: [("2", 0, "legal_hold is true"), ("5", 1, "exists app.dispute where open is true")])
    func anExemptSubjectNamesTheExemption(key: String, index: Int, condition: String) async throws {
        try await TestDatabase.with { database, connection in
            let policies = try await Self.load(on: database, connection)
            let standing = try await Self.standing(key, policies, on: connection)
            #expect(standing.verdict == .exempt)
            #expect(standing.exemptions == [.init(index: index, condition: condition)])
            #expect(standing.steps.allSatisfy { $0.rows == 0 })
        }
    }

    @Test func aNullActivityNeverExpires() async throws {
        try await TestDatabase.with { database, connection in
            let policies = try await Self.load(on: database, connection)
            let standing = try await Self.standing("4", policies, on: connection)
            #expect(standing.verdict == .noDate)
            #expect(standing.date == nil)
        }
    }

    @Test func consentInForceAndRevokedConsent() async throws {
        try await TestDatabase.with { database, connection in
            let policies = try await Self.load(on: database, connection)
            let three = try await Self.standing("3", policies, on: connection, policy: "newsletter")
            #expect(three.verdict == .consentInForce)
            #expect(three.consent?.state == "granted")
            #expect(three.consent?.at == "2025-01-01T10:00:00.000Z")
            let six = try await Self.standing("6", policies, on: connection, policy: "newsletter")
            #expect(six.verdict == .due)
            #expect(six.consent?.state == "revoked")
            #expect(six.expiresAt == "2026-07-01T10:00:00.000Z")
            // Its two events go with it.
            #expect(six.consentEvents == 2)
            let four = try await Self.standing("4", policies, on: connection, policy: "newsletter")
            #expect(four.verdict == .consentInForce)
            #expect(four.consent?.state == "none")
        }
    }

    @Test func afterTheRunTheKeptSubjectIsProcessedAndItsHistoryShowsTheRun() async throws {
        try await TestDatabase.with { database, connection in
            let policies = try await Self.load(on: database, connection)
            let before = try await Self.standing("1", policies, on: connection)
            let report = try await DemoShop.engine(connection).run([policies[0]], options: DemoShop.options(.live))
            #expect(report.outcome == .done)
            let explanation = try await Self.explain("1", policies, on: connection, key: true)
            let after = try #require(explanation.policies.first { $0.policy == "inactive" })
            #expect(after.verdict == .processed)
            #expect(after.steps.allSatisfy { $0.rows == 0 && $0.retained == 0 })
            let history = try #require(explanation.history)
            #expect(history.map(\.policy) == ["inactive"])
            // The record holds what the explanation predicted before the run.
            var predicted: [AuditCount] = []
            for step in before.steps {
                let action: AuditCount.Action = step.action == "delete" ? .deleted : .anonymized
                if step.rows > 0 { predicted.append(AuditCount(table: step.table, action: action, rows: step.rows)) }
                if step.retained > 0 {
                    predicted.append(AuditCount(table: step.table, action: .retained, rows: step.retained))
                }
            }
            #expect(Set(history.first?.counts ?? []) == Set(predicted))
        }
    }

    @Test func aMissingSubjectAndATableWithoutPolicy() async throws {
        try await TestDatabase.with { database, connection in
            let policies = try await Self.load(on: database, connection)
            let explanation = try await Self.explain("99", policies, on: connection)
            #expect(!explanation.exists)
            #expect(explanation.policies.allSatisfy { $0.verdict == .noSubject })
            await #expect(throws: NoPolicyOverTableError.self) {
                try await DemoShop.engine(connection).explain(
                    table: QualifiedName(schema: "app", name: "note"), key: "1", policies: policies, disabled: [],
                    asOf: nil, digester: nil)
            }
        }
    }

    @Test func aRuleOnTheLatestRelatedRowNamesItsRowsAndTheirDates() async throws {
        try await TestDatabase.with { database, connection in
            try await EdgeCase.load(
                """
                CREATE SCHEMA app;
                CREATE TABLE app.customer (id bigint PRIMARY KEY);
                CREATE TABLE app.order (
                    id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES app.customer, placed_at timestamptz);
                CREATE INDEX ON app.order (customer_id);
                INSERT INTO app.customer VALUES (1), (2), (3);
                INSERT INTO app.order VALUES
                    (1, 1, '2023-05-01 00:00+00'), (2, 1, '2024-05-01 00:00+00'),
                    (3, 2, '2023-05-01 00:00+00'), (4, 2, NULL);
                """, into: database, on: connection)
            let policy = try await EdgeCase.policy(
                """
                policy: buyers
                state: active
                subject: { table: app.customer, key: id }
                expires: { inactive_for: 1 year, activity: { table: app.order, column: placed_at } }
                data:
                  - { table: app.order, delete: true }
                  - { table: app.customer, delete: true }
                limits: { max_fraction: 1 }
                """, on: connection)
            let one = try await Self.standing("1", [policy], on: connection, policy: "buyers")
            #expect(one.verdict == .due)
            #expect(one.dateSource == "latest app.order.placed_at")
            #expect(one.date == "2024-05-01T00:00:00.000Z")
            #expect(one.expiresAt == "2025-05-01T00:00:00.000Z")
            #expect(one.relatedRows == 2 && one.nullDates == 0)
            #expect(one.steps.map(\.rows) == [2, 1])
            let two = try await Self.standing("2", [policy], on: connection, policy: "buyers")
            #expect(two.verdict == .noDate)
            #expect(two.relatedRows == 2 && two.nullDates == 1)
            let three = try await Self.standing("3", [policy], on: connection, policy: "buyers")
            #expect(three.verdict == .noDate)
            #expect(three.relatedRows == 0 && three.date == nil)
        }
    }

    @Test func explainingChangesNothing() async throws {
        try await TestDatabase.with { database, connection in
            let policies = try await Self.load(on: database, connection)
            let tables = ["app.customer", "app.address", "app.note", "gallra.consent_event", "gallra.processed"]
            var before: [String] = []
            for table in tables { before.append(try await checksum("SELECT * FROM \(table)", on: connection)) }
            for key in ["1", "2", "3", "4", "5", "6"] { _ = try await Self.explain(key, policies, on: connection) }
            var after: [String] = []
            for table in tables { after.append(try await checksum("SELECT * FROM \(table)", on: connection)) }
            #expect(before == after)
        }
    }
}
