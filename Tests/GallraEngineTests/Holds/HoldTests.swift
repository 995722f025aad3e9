import Foundation
import GallraCore
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

@testable import GallraEngine

// Four customers, all last seen in 2024, so due at DemoShop.asOf (2026-11-29) under both policies over app.customer:
// `inactive` anonymizes the e-mail (the row stays), `notes` deletes the customer's notes.
@Suite("Legal holds")
struct HoldTests {
    static let schema = """
        CREATE SCHEMA app;
        CREATE TABLE app.customer (id bigint PRIMARY KEY, email text, last_seen_at timestamptz);
        CREATE TABLE app.note (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES app.customer, body text);
        CREATE INDEX ON app.note (customer_id);
        INSERT INTO app.customer VALUES
            (101, 'a@example.com', '2024-01-01 00:00+00'), (102, 'b@example.com', '2024-01-01 00:00+00'),
            (103, 'c@example.com', '2024-01-01 00:00+00'), (104, 'd@example.com', '2024-01-01 00:00+00');
        INSERT INTO app.note VALUES (1, 101, 'x'), (2, 102, 'x'), (3, 103, 'x'), (4, 104, 'x');
        """

    static let inactive = """
        policy: inactive
        state: active
        subject: { table: app.customer, key: id }
        expires: { inactive_for: 1 year, activity: last_seen_at }
        data:
          - { table: app.customer, anonymize: { email: redact } }
        limits: { max_fraction: 1 }
        """

    static let notes = """
        policy: notes
        state: active
        subject: { table: app.customer, key: id }
        expires: { inactive_for: 1 year, activity: last_seen_at }
        data:
          - { table: app.note, delete: true }
        limits: { max_fraction: 1 }
        """

    static let table = QualifiedName(schema: "app", name: "customer")

    /// Loads the schema and stores both policies (as `gallra policy apply` does); returns them ready to run.
    static func load(on database: TestDatabase, _ connection: PostgresConnection) async throws -> [RunPolicy] {
        try await EdgeCase.load(schema, into: database, on: connection)
        var policies: [RunPolicy] = []
        for yaml in [inactive, notes] {
            let parsed = try #require(PolicyFile(parsing: yaml, path: "holds.yaml").policies.first)
            _ = try await PolicyStore(connection: connection).apply([(parsed.policy, source: "holds.yaml")])
            policies.append(try await EdgeCase.policy(yaml, on: connection))
        }
        return policies
    }

    static func digest(_ key: String) -> String {
        Digest.hex(Digest.hmacSHA256(key: DemoShop.keyBytes, message: Array("app.customer:\(key)".utf8)))
    }

    static func place(
        _ key: String, reason: String = "case 2026-114", until: Date? = nil, policy: String? = nil,
        on connection: PostgresConnection
    ) async throws -> Hold {
        try await Holds.place(
            Holds.Placement(
                table: table, match: .key(key), reason: reason, until: until.map(PostgresTimestamp.init),
                policy: policy),
            digester: try DemoShop.auditKey().digester, osUser: "clerk", on: connection)
    }

    static func count(_ query: String, on connection: PostgresConnection) async throws -> Int {
        try await connection.query(query).first?.decode("n", as: Int.self) ?? -1
    }

    @Test func placingListingAndReleasingAreChainedEventsWithoutTheKey() async throws {
        try await TestDatabase.with { database, connection in
            _ = try await Self.load(on: database, connection)
            let until = Date().addingTimeInterval(86_400 * 30)
            let hold = try await Self.place("101", until: until, policy: "notes", on: connection)
            #expect(hold.state == .inForce)
            #expect(hold.subjectTable == "app.customer")
            #expect(hold.subjectKey == "101")
            #expect(hold.subjectDigest == Self.digest("101"))
            #expect(hold.policy == "notes")
            #expect(hold.placedBy.hasPrefix("clerk (role "))
            #expect(try await Holds.list(.inForce, on: connection).map(\.id) == [hold.id])
            #expect(
                try await Holds.list(.inForce, subject: ("app.customer", "102"), on: connection).isEmpty)

            let released = try await Holds.release(
                id: hold.id, reason: "case closed", digester: nil, osUser: "clerk", on: connection)
            #expect(released.state == .released)
            #expect(released.releaseReason == "case closed")
            #expect(try await Holds.list(.inForce, on: connection).isEmpty)
            #expect(try await Holds.list(.all, subject: ("app.customer", "101"), on: connection).map(\.id) == [hold.id])

            let events = try await AuditEvents.lookup(digest: Self.digest("101"), on: connection)
            #expect(events.map(\.kind) == [.holdPlaced, .holdReleased])
            #expect(events.allSatisfy { $0.subjectTable == "app.customer" && $0.osUser == "clerk" })
            #expect(events.allSatisfy { !$0.detail.contains("101") })
            #expect(events.first?.detail.contains(#""reason":"case 2026-114""#) == true)
            #expect(events.first?.detail.contains(#""policy":"notes""#) == true)
            #expect(events.first?.detail.contains(#""hold":\#(hold.id)"#) == true)
            #expect(events.last?.detail.contains(#""reason":"case closed""#) == true)
            #expect(AuditEvents.firstBreak(in: try await AuditEvents.all(on: connection)) == nil)
            let verification = try await AuditTrail.verify(on: connection)
            #expect(verification.events == 2)
            #expect(verification.isIntact)

            // A changed event breaks the chain that verify recomputes.
            try await connection.execute("ALTER TABLE gallra.audit_event DISABLE TRIGGER audit_event_append_only")
            try await connection.execute("UPDATE gallra.audit_event SET detail = '{}' WHERE sequence = 2")
            let broken = try await AuditTrail.verify(on: connection)
            #expect(!broken.isIntact)
            #expect(broken.events == 1)
            #expect(broken.eventBreak == "event 2 was changed: its hash does not match")
        }
    }

    @Test func aHeldSubjectIsLeftAloneAndCountedAsHeldUntilReleased() async throws {
        try await TestDatabase.with { database, connection in
            let policies = try await Self.load(on: database, connection)
            let every = try await Self.place("101", on: connection)
            let notesOnly = try await Self.place("102", policy: "notes", on: connection)
            // Expired before the run's instant: it no longer holds.
            try await connection.execute(
                """
                INSERT INTO gallra.hold (subject_table, subject_key, reason, placed_at, placed_by, until)
                VALUES ('app.customer', '103', 'old case', '2026-01-01 00:00+00', 'clerk', '2026-06-01 00:00+00')
                """)

            let engine = try DemoShop.engine(connection)
            let dry = try await engine.run(policies, options: DemoShop.options(.dry))
            let live = try await engine.run(policies, options: DemoShop.options(.live))
            #expect(live.outcome == .done)
            for (dry, live) in zip(dry.policies, live.policies) {
                EdgeCase.expectSameNumbers(dry: dry, live: live)
                #expect(dry.held == live.held)
            }
            let reports = Dictionary(uniqueKeysWithValues: live.policies.map { ($0.name, $0) })
            #expect(reports["inactive"]?.expiring == 3)
            #expect(reports["inactive"]?.held == 1)
            #expect(reports["inactive"]?.processed == 3)
            #expect(reports["notes"]?.expiring == 2)
            #expect(reports["notes"]?.held == 2)
            #expect(reports["notes"]?.processed == 2)
            #expect(
                try await keys(
                    "SELECT id::text AS k FROM app.customer WHERE email LIKE '%@example.com' ORDER BY id",
                    on: connection)
                    == ["101"])
            #expect(
                try await keys("SELECT customer_id::text AS k FROM app.note ORDER BY 1", on: connection) == [
                    "101", "102",
                ])
            #expect(!(try await DemoShop.auditedDigests(on: connection)).contains(Self.digest("101")))

            // Explain says why, with the hold; the extract's standing says held.
            let explanation = try await engine.explain(
                table: Self.table, key: "102", policies: policies, disabled: [],
                asOf: PostgresTimestamp(DemoShop.asOf), digester: nil)
            let underNotes = try #require(explanation.policies.first { $0.policy == "notes" })
            #expect(underNotes.verdict == .held)
            #expect(underNotes.holds.map(\.id) == [notesOnly.id])
            #expect(underNotes.holds.first?.reason == "case 2026-114")
            #expect(explanation.policies.first { $0.policy == "inactive" }?.verdict == .processed)
            let standing = try await connection.transaction { connection in
                try await SubjectExtract.standing(
                    of: "101", under: policies[0].resolved, at: PostgresTimestamp(DemoShop.asOf), on: connection)
            }
            #expect(standing == .held)

            // The expired hold, its subject processed, names it by digest only.
            let expired = try #require(try await Holds.list(.all, on: connection).first { $0.reason == "old case" })
            #expect(expired.subjectKey == nil)
            #expect(expired.subjectDigest == Self.digest("103"))
            #expect(expired.state == .released)
            // The hold still in force on 102 keeps its key: it still stops `notes`.
            #expect(try await Holds.list(.inForce, on: connection).compactMap(\.subjectKey) == ["101", "102"])

            // Released: the next run processes the subject, and its hold keeps the digest, not the key.
            _ = try await Holds.release(
                id: every.id, reason: "case closed", digester: nil, osUser: "clerk", on: connection)
            let next = try await engine.run(policies, options: DemoShop.options(.live))
            #expect(next.policies.map(\.processed) == [1, 1])
            #expect(next.policies.map(\.held) == [nil, 1])
            #expect(
                try await Self.count("SELECT count(*) AS n FROM app.note WHERE customer_id = 101", on: connection) == 0)
            let releasedHold = try #require(try await Holds.list(.all, on: connection).first { $0.id == every.id })
            #expect(releasedHold.subjectKey == nil)
            #expect(releasedHold.subjectDigest == Self.digest("101"))
            #expect(
                try await Self.count(
                    "SELECT count(*) AS n FROM gallra.hold WHERE subject_key = '101'", on: connection) == 0)
        }
    }

    @Test func aHoldOnOnePolicyEndsWhenAnotherErasesItsSubject() async throws {
        try await TestDatabase.with { database, connection in
            _ = try await Self.load(on: database, connection)
            let gone = """
                policy: gone
                state: active
                subject: { table: app.customer, key: id }
                expires: { inactive_for: 1 year, activity: last_seen_at }
                data:
                  - { table: app.note, delete: true }
                  - { table: app.customer, delete: true }
                limits: { max_fraction: 1 }
                """
            let parsed = try #require(PolicyFile(parsing: gone, path: "gone.yaml").policies.first)
            _ = try await PolicyStore(connection: connection).apply([(parsed.policy, source: "gone.yaml")])
            let policy = try await EdgeCase.policy(gone, on: connection)
            let hold = try await Self.place("104", policy: "notes", on: connection)

            let report = try await DemoShop.engine(connection).run([policy], options: DemoShop.options(.live))
            #expect(report.policies.first?.processed == 4)
            // Nothing is left for the hold to stop: it ends, naming the policy that erased the subject, and keeps
            // the digest only.
            let ended = try #require(try await Holds.list(.all, on: connection).first { $0.id == hold.id })
            #expect(ended.subjectKey == nil)
            #expect(ended.subjectDigest == Self.digest("104"))
            #expect(ended.state == .released)
            #expect(ended.releaseReason == "its subject was erased under policy gone")
            #expect(
                try await Self.count(
                    "SELECT count(*) AS n FROM gallra.hold WHERE subject_key IS NOT NULL", on: connection)
                    == 0)
        }
    }

    @Test func placingAHoldWaitsForABatchThatHoldsTheSubject() async throws {
        try await TestDatabase.with { database, connection in
            _ = try await Self.load(on: database, connection)
            let batch = try await database.connect()
            // A batch that keeps the row: it locks its subjects FOR NO KEY UPDATE until it commits.
            try await batch.execute("BEGIN")
            try await batch.execute("SELECT FROM app.customer WHERE id = 101 FOR NO KEY UPDATE")
            try await connection.execute("SET lock_timeout = '200ms'")
            let waited = await #expect(throws: PostgresError.self) {
                try await Self.place("101", on: connection)
            }
            #expect(waited?.sqlState == .lockNotAvailable)
            #expect(try await Holds.list(.all, on: connection).isEmpty)
            try await batch.execute("ROLLBACK")
            await batch.close()
            #expect(try await Self.place("101", on: connection).subjectKey == "101")
        }
    }

    @Test func theHoldCheckIsAnIndexProbe() async throws {
        try await TestDatabase.with { database, connection in
            let policies = try await Self.load(on: database, connection)
            let planner = try Planner(policies[0].resolved)
            let pick = planner.pickBatch(afterKey: false)
            let bindings = Engine.Bindings(asOf: PostgresTimestamp(DemoShop.asOf), policyName: "inactive")
            let plan = try await connection.transaction { connection in
                // Seq scans of an empty table are cheapest; forbid them to see whether the index can serve.
                try await connection.execute("SET LOCAL enable_seqscan = off")
                return try await connection.query("EXPLAIN " + pick.sql, Engine.values(pick, bindings)).map {
                    try $0.decode("QUERY PLAN", as: String.self)
                }.joined(separator: "\n")
            }
            #expect(plan.contains("hold_in_force"), "\(plan)")
        }
    }

    @Test func badInputIsRefusedClearlyAndWritesNothing() async throws {
        try await TestDatabase.with { database, connection in
            _ = try await Self.load(on: database, connection)
            let hold = try await Self.place("101", on: connection)
            _ = try await Holds.release(id: hold.id, reason: "done", digester: nil, osUser: "clerk", on: connection)
            let holds = "SELECT count(*) AS n FROM gallra.hold"
            let events = "SELECT count(*) AS n FROM gallra.audit_event"
            let before = (try await Self.count(holds, on: connection), try await Self.count(events, on: connection))

            let unknown = await #expect(throws: SubjectFinderError.self) {
                try await Self.place("999", on: connection)
            }
            #expect(unknown?.code == .noSuchSubject)
            #expect(unknown?.exitStatus == .noInput)
            #expect(unknown?.description.contains("999") == false)

            let policy = await #expect(throws: HoldError.self) {
                try await Self.place("102", policy: "nonesuch", on: connection)
            }
            #expect(policy?.code == .unknownPolicy)
            #expect(policy?.exitStatus == .dataError)
            #expect(policy?.description.contains("inactive, notes") == true)

            let past = await #expect(throws: HoldError.self) {
                try await Self.place("102", until: Date().addingTimeInterval(-60), on: connection)
            }
            #expect(past?.code == .untilPassed)

            let empty = await #expect(throws: HoldError.self) {
                try await Self.place("102", reason: "", on: connection)
            }
            #expect(empty?.code == .badReason)
            let long = await #expect(throws: HoldError.self) {
                try await Self.place("102", reason: String(repeating: "é", count: 513), on: connection)
            }
            #expect(long?.code == .badReason)

            let twice = await #expect(throws: HoldError.self) {
                try await Holds.release(id: hold.id, reason: "again", digester: nil, osUser: "clerk", on: connection)
            }
            #expect(twice?.code == .notInForce)
            #expect(twice?.exitStatus == .dataError)
            #expect(twice?.description.contains("released already") == true)

            let missing = await #expect(throws: HoldError.self) {
                try await Holds.release(id: 4242, reason: "x", digester: nil, osUser: "clerk", on: connection)
            }
            #expect(missing?.code == .noSuchHold)
            #expect(missing?.exitStatus == .noInput)

            let after = (try await Self.count(holds, on: connection), try await Self.count(events, on: connection))
            #expect(after == before)
        }
    }

    @Test func anExpiredHoldCannotBeReleased() async throws {
        try await TestDatabase.with { database, connection in
            _ = try await Self.load(on: database, connection)
            let id = try await connection.query(
                """
                INSERT INTO gallra.hold (subject_table, subject_key, reason, placed_at, placed_by, until)
                VALUES ('app.customer', '101', 'old case', '2026-01-01 00:00+00', 'clerk', '2026-06-01 00:00+00')
                RETURNING id
                """
            ).first?.decode("id", as: Int64.self)
            let expired = await #expect(throws: HoldError.self) {
                try await Holds.release(id: id ?? 0, reason: "x", digester: nil, osUser: "clerk", on: connection)
            }
            #expect(expired?.code == .notInForce)
            #expect(expired?.description.contains("expired") == true)
            #expect(try await Holds.list(.inForce, on: connection).isEmpty)
            #expect(try await Holds.list(.all, on: connection).map(\.state) == [.expired])
            #expect(
                try await Holds.inForce(
                    subjectTable: "app.customer", subjectKey: "101", policy: nil, asOf: nil, on: connection
                )
                .isEmpty)
            // At an instant before its until, it was in force.
            let then = PostgresTimestamp(Date(timeIntervalSince1970: 1_770_000_000))  // 2026-02-02
            #expect(
                try await Holds.inForce(
                    subjectTable: "app.customer", subjectKey: "101", policy: "notes", asOf: then, on: connection
                ).map(\.id) == [id])
        }
    }
}
