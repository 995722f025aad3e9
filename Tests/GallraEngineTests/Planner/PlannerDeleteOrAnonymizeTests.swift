import Foundation
import GallraCore
import Testing

@testable import GallraEngine
@testable import GallraPolicy

/// The SQL of a data point that deletes where nothing references its rows and anonymizes the others.
@Suite("Planner SQL: delete where possible, anonymize otherwise")
struct PlannerDeleteOrAnonymizeTests {
    static let invoice = QualifiedName(schema: "shop", name: "invoice")
    static let store = QualifiedName(schema: "shop", name: "store")
    static let email = ResolvedAnonymization(
        column: ColumnName("email"), type: "text", strategy: .redact(nil), value: .string("[redacted]"),
        detaches: nil)
    static let customerLink = ResolvedAnonymization(
        column: ColumnName("customer_id"), type: "bigint", strategy: .null, value: nil,
        detaches: "order_customer_id_fkey")
    static let street = ResolvedAnonymization(
        column: ColumnName("street"), type: "text", strategy: .redact(nil), value: .string("[redacted]"),
        detaches: nil)

    static func reference(_ table: QualifiedName, _ column: String, _ key: String) -> ForeignKeyReference {
        ForeignKeyReference(
            table: table, columns: [ColumnName(column)], foreignKey: "\(table.name)_\(column)_fkey",
            referencedColumns: [ColumnName("id")])
    }

    static func planner() throws -> Planner {
        try Planner(
            PlannerTests.resolved(steps: [
                PlannerTests.step(
                    PlannerTests.order, [PlannerTests.orderHop], .owned,
                    .deleteOrAnonymize([customerLink, email]),
                    referencedBy: [reference(invoice, "order_id", "id")]),
                PlannerTests.step(PlannerTests.customer, [], .subject, .delete),
                PlannerTests.step(
                    PlannerTests.address, [PlannerTests.addressHop], .referenced, .deleteOrAnonymize([street]),
                    referencedBy: [
                        reference(PlannerTests.customer, "address_id", "id"), reference(store, "address_id", "id"),
                    ]),
            ]))
    }

    @Test func ownedRowsAreLockedThenAnonymizedWhereReferencedAndDeletedElsewhereInOneStatement() throws {
        let plan = try Self.planner().stepPlans()[0]
        #expect(plan.deletesOrAnonymizes)
        #expect(plan.countedAction == .deleteOrAnonymize)
        let lock = try #require(plan.lock)
        #expect(
            lock.sql.hasPrefix(
                #"SELECT FROM "shop"."order" AS x, unnest($1::bigint[]) AS s("id") WHERE x."customer_id" = s."id""#
            ))
        #expect(lock.sql.hasSuffix("FOR UPDATE OF x"))
        #expect(lock.parameters == [.keys])
        let act = try #require(plan.act)
        let kept = #"(EXISTS (SELECT FROM "shop"."invoice" AS h1 WHERE h1."order_id" = x."id"))"#
        #expect(
            act.sql.hasPrefix(
                #"WITH a AS (UPDATE "shop"."order" AS x SET "customer_id" = NULL, "email" = $1::text::text FROM unnest("#
            ))
        #expect(act.sql.contains(#"AND \#(kept) RETURNING s."id"::text AS subject),"#))
        #expect(act.sql.contains(#"d AS (DELETE FROM "shop"."order" AS x USING unnest("#))
        #expect(act.sql.contains(#"AND NOT \#(kept) RETURNING s."id"::text AS subject)"#))
        #expect(
            act.sql.hasSuffix(
                """
                SELECT subject, count(*) FILTER (WHERE NOT anonymized) AS rows, count(*) FILTER (WHERE anonymized) AS anonymized
                FROM (SELECT subject, true AS anonymized FROM a UNION ALL SELECT subject, false FROM d) AS c GROUP BY subject
                """))
        #expect(act.parameters == [.text("[redacted]"), .keys])
    }

    @Test func theSubjectRowIsJudgedByEveryReferenceAndLockedForDelete() throws {
        let planner = try Planner(
            PlannerTests.resolved(steps: [
                PlannerTests.step(
                    PlannerTests.customer, [], .subject, .deleteOrAnonymize([Self.email]),
                    referencedBy: [
                        Self.reference(PlannerTests.order, "customer_id", "id"),
                        Self.reference(PlannerTests.customer, "referred_by", "id"),
                    ])
            ]))
        let plan = planner.stepPlans()[0]
        #expect(plan.lock == nil)
        let act = try #require(plan.act?.sql)
        #expect(
            act.contains(
                #"UPDATE "shop"."customer" AS x SET "email" = $1::text::text WHERE x."id" = ANY ($2::bigint[]) AND (EXISTS (SELECT FROM "shop"."order" AS h1 WHERE h1."customer_id" = x."id") OR EXISTS (SELECT FROM "shop"."customer" AS h2 WHERE h2."referred_by" = x."id" AND (h2.tableoid, h2.ctid) <> (x.tableoid, x.ctid))) RETURNING x."id"::text AS subject"#
            ))
        // The row may be deleted: subjects are locked against new references; kept ones are remembered as processed.
        #expect(!planner.deletesSubjectRow)
        #expect(planner.mayDeleteSubjectRow)
        #expect(planner.pickBatch(afterKey: false).sql.contains("FOR UPDATE OF s SKIP LOCKED"))
        #expect(planner.countSubjects().sql.contains("gallra.processed"))
    }

    @Test func rowsTheSubjectPointsToAreDeletedUnlessSharedAndThenAnonymized() throws {
        let plan = try Self.planner().stepPlans()[2]
        let capture = try #require(plan.capture?.sql)
        // Locked for a delete; a shared row already anonymized is left out, an unshared one is deleted whatever it holds.
        #expect(capture.contains("FOR UPDATE OF x)"))
        #expect(
            capture.contains(
                #"OR jsonb_build_array(x."street") IS DISTINCT FROM jsonb_build_array($6::text::text))"#))
        #expect(
            capture.contains(
                #"WHERE x."id" IN (SELECT k1 FROM p) AND (NOT (EXISTS (SELECT FROM "shop"."customer" AS o1"#))
        let delete = try #require(plan.actOnRows?.sql)
        #expect(delete.hasPrefix(#"WITH d AS (DELETE FROM "shop"."address" AS x"#))
        let anonymize = try #require(plan.anonymizeRows?.sql)
        #expect(anonymize.hasPrefix(#"WITH d AS (UPDATE "shop"."address" AS x SET "street" = $1::text::text"#))
        #expect(!anonymize.contains("gallra.processed_row"))
    }

    @Test func theDryRunCountsDeletedAndAnonymizedRowsApart() throws {
        let sql = try Self.planner().dryRunCounts().sql
        #expect(sql.contains("0::bigint AS anonymized"))
        #expect(
            sql.contains(
                #"SELECT 0, count(*), 0::bigint, count(*) FILTER (WHERE (EXISTS (SELECT FROM "shop"."invoice" AS h1_1 WHERE h1_1."order_id" = x."id"))), 0::bigint FROM "shop"."order" AS x"#
            ))
        #expect(
            sql.contains(
                """
                SELECT 2, a.deleted + a.anonymized, 0::bigint, a.anonymized, 0::bigint
                FROM (SELECT count(*) FILTER (WHERE unshared) AS deleted,
                    count(*) FILTER (WHERE NOT unshared AND gallra_pending) AS anonymized
                """))
    }

    @Test func theDryRunLeavesOutReferencesFromRowsAnEarlierStepDeletes() throws {
        let line = QualifiedName(schema: "shop", name: "order_line")
        let lineHop = PlannerTests.hop(PlannerTests.order, "id", line, "order_id", .child)
        let planner = try Planner(
            PlannerTests.resolved(steps: [
                PlannerTests.step(line, [PlannerTests.orderHop, lineHop], .owned, .delete),
                PlannerTests.step(
                    PlannerTests.order, [PlannerTests.orderHop], .owned, .deleteOrAnonymize([Self.email]),
                    referencedBy: [Self.reference(line, "order_id", "id")]),
            ]))
        let sql = planner.dryRunCounts().sql
        #expect(
            sql.contains(
                #"count(*) FILTER (WHERE (EXISTS (SELECT FROM "shop"."order_line" AS h1_1 WHERE h1_1."order_id" = x."id" AND NOT EXISTS (SELECT FROM due AS d, "shop"."order" AS k1 WHERE k1."customer_id" = d."id" AND h1_1."order_id" = k1."id"))))"#
            ))
    }
}
