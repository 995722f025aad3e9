import GallraCore
import GallraPolicy
import GallraPostgres
import GallraTestSupport
import Testing

@testable import GallraEngine

/// Customers with wishlists, under the policy `inactive-customers` (wishlist items and the customer row).
private func withShop(_ body: (TestDatabase, PostgresConnection) async throws -> Void) async throws {
    try await TestDatabase.with { database, connection in
        try await execute(
            [
                "CREATE SCHEMA shop",
                """
                CREATE TABLE shop.customer (
                    id bigint PRIMARY KEY, email text NOT NULL, code varchar(5), born date, last_seen_at timestamptz)
                """,
                """
                CREATE TABLE shop.wishlist_item (
                    id int PRIMARY KEY, customer_id bigint NOT NULL REFERENCES shop.customer, note text)
                """,
                """
                INSERT INTO shop.customer (id, email, code) VALUES
                    (1, 'ada@example.org', 'abc'), (2, 'bob@example.org', 'xyz')
                """,
                "INSERT INTO shop.wishlist_item VALUES (10, 1, 'red'), (11, 1, 'blue'), (12, 2, 'red')",
            ], on: connection)
        try await Schema.migrate(on: connection)
        _ = try await PolicyStore(connection: connection).apply([
            (try policy("inactive-customers"), source: "inactive.yaml")
        ])
        try await body(database, connection)
    }
}

private let customer = QualifiedName(schema: "shop", name: "customer")
private let wishlist = QualifiedName(schema: "shop", name: "wishlist_item")

private func subject(_ key: String) -> FoundSubject {
    FoundSubject(table: customer, keyColumn: ColumnName("id"), key: key)
}

/// What the shop's tables and gallra's events hold, to compare before and after.
private func state(on connection: PostgresConnection) async throws -> String {
    try await scalar(
        """
        SELECT (SELECT string_agg(c::text, ';' ORDER BY id) FROM shop.customer AS c) || ' / '
            || (SELECT string_agg(w::text, ';' ORDER BY id) FROM shop.wishlist_item AS w) || ' / '
            || (SELECT count(*) FROM gallra.audit_event)
        """, on: connection)
}

@Suite("SubjectCorrection", .serialized)
struct SubjectCorrectionTests {
    /// The plan shows the subject's rows only, those that already hold the value left out; applying changes them
    /// and records one event that `AuditEvents.lookup` finds by the subject's digest.
    @Test func plansAndAppliesTheSubjectsRowsWithAnEvent() async throws {
        try await withShop { _, connection in
            try await connection.execute("UPDATE shop.wishlist_item SET note = 'green' WHERE id = 11")
            // A table named without its schema is found along the search path, as the policies' names are.
            try await connection.execute("SET search_path = shop, public")
            let plan = try await SubjectCorrection.plan(
                subject: subject("1"),
                changes: [
                    CorrectionChange(table: wishlist, column: ColumnName("note"), value: "green"),
                    CorrectionChange(
                        table: QualifiedName(schema: nil, name: "customer"), column: ColumnName("born"),
                        value: "1815-12-10"),
                ], on: connection)
            #expect(plan.subjectTable == "shop.customer")
            #expect(plan.tables.map(\.table) == ["shop.wishlist_item", "shop.customer"])
            #expect(
                plan.tables[0].rows == [CorrectionPlan.Row(identity: ["10"], old: ["red"], new: ["green"])])
            #expect(plan.tables[1].rows == [CorrectionPlan.Row(identity: ["1"], old: [nil], new: ["1815-12-10"])])

            let digester = SubjectDigester(key: Array("a-key-of-at-least-thirty-two-bytes-long".utf8))
            let digest = digester.digest(table: plan.subjectTable, key: plan.key)
            let event = try await SubjectCorrection.apply(
                plan, subjectDigest: digest, osUser: "tester", on: connection)
            #expect(event.kind == .correction)
            #expect(
                event.detail
                    == #"{"tables":[{"columns":["note"],"rows":1,"table":"shop.wishlist_item"},"#
                    + #"{"columns":["born"],"rows":1,"table":"shop.customer"}]}"#)
            #expect(try await AuditEvents.lookup(digest: digest, on: connection) == [event])
            #expect(
                try await state(on: connection)
                    == "(1,ada@example.org,abc,1815-12-10,);(2,bob@example.org,xyz,,) / "
                    + "(10,1,green);(11,1,green);(12,2,red) / 1")
        }
    }

    /// A value longer than the column's varchar(5) passes the plan (the cast is to the type without its modifier,
    /// so it is not cut) and is refused by the assignment: 22001, nothing changed, no event.
    @Test func aValueTooLongIsRefusedNotCut() async throws {
        try await withShop { _, connection in
            let before = try await state(on: connection)
            let plan = try await SubjectCorrection.plan(
                subject: subject("1"),
                changes: [
                    CorrectionChange(table: wishlist, column: ColumnName("note"), value: "green"),
                    CorrectionChange(table: customer, column: ColumnName("code"), value: "abcdefgh"),
                ], on: connection)
            #expect(plan.tables[1].rows.first?.new == ["abcdefgh"])
            do {
                try await SubjectCorrection.apply(plan, subjectDigest: nil, osUser: "tester", on: connection)
                Issue.record("applied a value longer than varchar(5)")
            } catch let error as CorrectionError {
                #expect(error.code == .valueRefused)
                #expect(error.exitStatus == .dataError)
                #expect(error.description.contains("SQLSTATE 22001 string_data_right_truncation"), "\(error)")
                #expect(!error.description.contains("abcdefgh"))
            }
            #expect(try await state(on: connection) == before)
        }
    }

    /// Rows that change between the plan and its application: nothing changes, exit 75.
    @Test func rowsChangedSinceThePlanChangeNothing() async throws {
        try await withShop { _, connection in
            let plan = try await SubjectCorrection.plan(
                subject: subject("1"),
                changes: [CorrectionChange(table: wishlist, column: ColumnName("note"), value: "green")],
                on: connection)
            #expect(plan.rowCount == 2)
            try await connection.execute("INSERT INTO shop.wishlist_item VALUES (13, 1, 'black')")
            let before = try await state(on: connection)
            do {
                try await SubjectCorrection.apply(plan, subjectDigest: nil, osUser: "tester", on: connection)
                Issue.record("applied a plan the rows no longer match")
            } catch let error as CorrectionError {
                #expect(error.code == .changedMeanwhile)
                #expect(error.exitStatus == .temporaryFailure)
            }
            #expect(try await state(on: connection) == before)
        }
    }

    /// A subject row another session holds: the correction waits its lock timeout, then gives up (exit 75) and
    /// changes nothing.
    @Test func rowsHeldByAnotherSessionChangeNothing() async throws {
        try await withShop { database, connection in
            let plan = try await SubjectCorrection.plan(
                subject: subject("1"),
                changes: [
                    CorrectionChange(table: wishlist, column: ColumnName("note"), value: "green"),
                    CorrectionChange(table: customer, column: ColumnName("email"), value: "ada@example.com"),
                ], on: connection)
            let before = try await state(on: connection)
            let holder = try await database.connect()
            try await holder.execute("BEGIN")
            try await holder.execute("SELECT FROM shop.customer WHERE id = 1 FOR UPDATE")
            do {
                try await SubjectCorrection.apply(plan, subjectDigest: nil, osUser: "tester", on: connection)
                Issue.record("applied a correction to a row another session holds")
            } catch let error as CorrectionError {
                #expect(error.code == .rowsLocked)
                #expect(error.exitStatus == .temporaryFailure)
            }
            try await holder.execute("ROLLBACK")
            await holder.close()
            #expect(try await state(on: connection) == before)
        }
    }
}
