import Foundation
import GallraCore
import GallraPostgres
import Testing

@testable import GallraEngine
@testable import GallraPolicy

/// The planner's SQL, without a server: shapes, quoting, and that every value is a bound parameter.
@Suite("Planner SQL")
struct PlannerTests {
    static let customer = QualifiedName(schema: "shop", name: "customer")
    static let order = QualifiedName(schema: "shop", name: "order")
    static let address = QualifiedName(schema: "shop", name: "address")

    static func hop(
        _ from: QualifiedName, _ fromColumn: String, _ to: QualifiedName, _ toColumn: String,
        _ direction: JoinHop.Direction
    ) -> JoinHop {
        JoinHop(
            from: from, fromColumns: [ColumnName(fromColumn)], to: to, toColumns: [ColumnName(toColumn)],
            direction: direction, foreignKey: nil, onDelete: nil, via: nil)
    }

    static func step(
        _ table: QualifiedName, _ path: [JoinHop], _ relation: ResolvedStep.Relation, _ action: ResolvedStep.Action,
        referencedBy: [ForeignKeyReference] = [], primaryKey: [String]? = nil
    ) -> ResolvedStep {
        ResolvedStep(
            dataPoint: 0, location: nil, table: table, isPartitioned: false, path: path, relation: relation,
            action: action, identifyRowsBefore: nil, referencedBy: referencedBy, notes: [], estimatedRows: -1,
            primaryKey: primaryKey?.map { ColumnName($0) })
    }

    static func resolved(
        exemptions: [ResolvedExemption] = [], steps: [ResolvedStep], rulePath: [JoinHop] = []
    ) throws -> ResolvedPolicy {
        let policy = try Policy(parsing: policyYAML("p"))
        return ResolvedPolicy(
            policy: policy,
            subject: ResolvedSubject(
                table: customer, key: ColumnName("id"), keyType: "bigint", keyCategory: .numeric,
                isPartitioned: false, estimatedRows: -1),
            rule: ResolvedRule(
                kind: .inactiveFor, period: try RetentionPeriod(parsing: "1 year"),
                table: rulePath.isEmpty ? customer : order,
                column: ColumnName(rulePath.isEmpty ? "last_seen_at" : "placed_at"),
                columnType: "timestamp with time zone", path: rulePath, index: nil),
            exemptions: exemptions, steps: steps)
    }

    static let orderHop = hop(customer, "id", order, "customer_id", .child)
    static let addressHop = hop(customer, "address_id", address, "id", .parent)

    @Test func dueSubjectsAreKeysetPickedLockedAndSkipLocked() throws {
        let planner = try Planner(
            Self.resolved(
                exemptions: [
                    ResolvedExemption(
                        index: 0, exemption: .column(ColumnName("legal_hold"), .is(.true)), table: Self.customer,
                        path: [])
                ],
                steps: [Self.step(Self.customer, [], .subject, .delete)]))
        let pick = planner.pickBatch(afterKey: true)
        #expect(pick.sql.contains(#"s."last_seen_at" < ($1::timestamptz - $2::interval)"#))
        #expect(pick.sql.contains(#"NOT coalesce((s."legal_hold" IS TRUE), false)"#))
        // A legal hold in force keeps a subject from being due: one probe of `hold_in_force` per subject.
        #expect(
            pick.sql.contains(
                #"AND (SELECT true FROM gallra.hold AS h WHERE h.subject_table = $3 AND h.subject_key = (s."id"::text COLLATE "C") AND h.released_at IS NULL AND (h.until IS NULL OR h.until > $1::timestamptz) AND (h.policy IS NULL OR h.policy = $4) LIMIT 1) IS NOT TRUE"#
            ))
        #expect(pick.sql.contains(#"AND s."id" > $5::text::bigint"#))
        #expect(pick.sql.contains(#"ORDER BY s."id""#))
        #expect(pick.sql.contains("LIMIT $6\nFOR UPDATE OF s SKIP LOCKED"))
        #expect(
            pick.parameters == [.asOf, .interval("1 year"), .text("shop.customer"), .policyName, .afterKey, .limit])
        // A policy that deletes the subject row needs no memory of processed subjects.
        #expect(!pick.sql.contains("gallra.processed"))
    }

    @Test func aPolicyKeepingTheSubjectRowExcludesProcessedSubjects() throws {
        let planner = try Planner(
            Self.resolved(steps: [Self.step(Self.order, [Self.orderHop], .owned, .delete)]))
        let count = planner.countSubjects()
        #expect(
            count.sql.contains(
                #"NOT EXISTS (SELECT FROM gallra.processed AS p WHERE p.policy = $3 AND p.subject_key = s."id"::text)"#)
        )
        #expect(count.parameters.contains(.policyName))
        // A batch probes the record of each subject it looks at, whatever the table's statistics.
        let pick = planner.pickBatch(afterKey: false)
        // A subject whose row remains is locked against updates (a returning customer), not against references.
        #expect(pick.sql.contains("FOR NO KEY UPDATE OF s SKIP LOCKED"))
        #expect(
            pick.sql.contains(
                #"(SELECT true FROM gallra.processed AS p WHERE p.policy = $3 AND p.subject_key = s."id"::text) IS NOT TRUE"#
            ))
        #expect(!pick.sql.contains("NOT EXISTS (SELECT FROM gallra.processed"))
    }

    @Test func latestRelatedRowNeedsARowAndNoRecentOrUnknownOne() throws {
        let planner = try Planner(
            Self.resolved(steps: [Self.step(Self.customer, [], .subject, .delete)], rulePath: [Self.orderHop]))
        let sql = planner.countSubjects().sql
        #expect(
            sql.contains(
                #"EXISTS (SELECT FROM "shop"."order" AS r1 WHERE r1."customer_id" = s."id" AND r1."placed_at" < "#))
        #expect(
            sql.contains(
                #"AND NOT EXISTS (SELECT FROM "shop"."order" AS q1 WHERE q1."customer_id" = s."id" AND (q1."placed_at" >= "#
            ))
        #expect(sql.contains(#"OR q1."placed_at" IS NULL)"#))
    }

    @Test func consentFromTheRegistryReadsTheLatestEventWithBoundNames() throws {
        let policy = try Policy(
            parsing: """
                policy: newsletter
                legal_basis: consent
                subject: { table: shop.customer, key: id }
                expires: { consent_revoked: 30 days, consent: gallra }
                data:
                  - { table: shop.customer, anonymize: { email: fake_email } }
                """)
        let planner = try Planner(
            ResolvedPolicy(
                policy: policy,
                subject: ResolvedSubject(
                    table: Self.customer, key: ColumnName("id"), keyType: "bigint", keyCategory: .numeric,
                    isPartitioned: false, estimatedRows: -1),
                rule: ResolvedRule(
                    kind: .consentRevoked, period: try RetentionPeriod(parsing: "30 days"),
                    table: QualifiedName(schema: "gallra", name: "consent_event"), column: ColumnName("recorded_at"),
                    columnType: "timestamp with time zone", path: [], index: "consent_event_one_history"),
                exemptions: [], steps: [Self.step(Self.customer, [], .subject, .anonymize([]))]))
        let count = planner.countSubjects()
        #expect(
            count.sql.contains(
                #"(SELECT e."event" = 'revoked' AND e."recorded_at" <= ($1::timestamptz - $2::interval) FROM "gallra"."consent_event" AS e WHERE e."subject_table" = $3 AND e."subject_key" = s."id"::text AND e."policy" = $4 ORDER BY e."ordinal" DESC LIMIT 1) IS TRUE"#
            ))
        // The subject table and the policy's name are values, never spliced into the text.
        #expect(count.parameters.prefix(4) == [.asOf, .interval("30 days"), .text("shop.customer"), .policyName])
        #expect(!count.sql.contains("newsletter"))
        #expect(!count.sql.contains("'shop.customer'"))
        // The live run picks batches by the same condition as the count and the dry run.
        let pick = planner.pickBatch(afterKey: false)
        #expect(pick.sql.contains(#"FROM "gallra"."consent_event" AS e WHERE e."subject_table" = $3"#))
        #expect(pick.parameters.prefix(4) == [.asOf, .interval("30 days"), .text("shop.customer"), .policyName])
    }

    @Test func aReplayPicksItsKeysWhateverTheRuleAndExemptionsSayAndKeepsHoldsAndLocks() throws {
        let planner = try Planner(
            Self.resolved(
                exemptions: [
                    ResolvedExemption(
                        index: 0, exemption: .column(ColumnName("legal_hold"), .is(.true)), table: Self.customer,
                        path: [])
                ],
                steps: [Self.step(Self.customer, [], .subject, .delete)]),
            replaying: true)
        let pick = planner.pickBatch(afterKey: true)
        #expect(
            pick.sql.contains(
                #"WHERE s."id" = ANY ($1::bigint[])"#), "\(pick.sql)")
        #expect(!pick.sql.contains("last_seen_at"))
        #expect(!pick.sql.contains("legal_hold"))
        #expect(pick.sql.contains("FROM gallra.hold AS h"))
        #expect(pick.sql.contains("FOR UPDATE OF s SKIP LOCKED"))
        #expect(pick.parameters.first == .replayKeys)
        #expect(!pick.parameters.contains(.interval("1 year")))
        // The batch was picked from the keys: its confirmation checks holds and locks, not the keys again.
        let confirm = planner.confirmBatch()
        #expect(!confirm.parameters.contains(.replayKeys), "\(confirm.sql)")
        #expect(confirm.sql.contains("FROM gallra.hold AS h"))
        let counts = planner.countSubjects()
        #expect(counts.sql.contains("SELECT false AS exempted"), "\(counts.sql)")
        #expect(try Planner(planner.resolved).countSubjects().sql.contains("legal_hold"))
    }

    @Test func onRequestProbesThePendingRequestNarrowedOrWidenedByItsScope() throws {
        let policy = try Policy(
            parsing: """
                policy: erasure
                subject: { table: shop.customer, key: id }
                expires: on_request
                data:
                  - { table: shop.customer, delete: true }
                """)
        let resolved = ResolvedPolicy(
            policy: policy,
            subject: ResolvedSubject(
                table: Self.customer, key: ColumnName("id"), keyType: "bigint", keyCategory: .numeric,
                isPartitioned: false, estimatedRows: -1),
            rule: ResolvedRule(
                kind: .onRequest, period: RetentionPeriod(),
                table: QualifiedName(schema: "gallra", name: "erasure_request"),
                column: ColumnName("not_before"), columnType: "timestamp with time zone", path: [],
                index: "erasure_request_one_pending"),
            exemptions: [], steps: [Self.step(Self.customer, [], .subject, .delete)])
        let pending =
            #"EXISTS (SELECT FROM "gallra"."erasure_request" AS q WHERE q.subject_table = $1 AND q.subject_key = s."id"::text AND q.status = 'pending' AND q.not_before <= $2::timestamptz)"#
        let due = try Planner(resolved).pickBatch(afterKey: false)
        #expect(due.sql.contains("WHERE \(pending)\n"), "\(due.sql)")
        #expect(due.parameters.prefix(2) == [.text("shop.customer"), .asOf])
        let one = try Planner(resolved, requests: .request(key: "42")).countSubjects()
        #expect(one.sql.contains(#"(s."id"::text = $3 AND "# + pending + ")"), "\(one.sql)")
        #expect(one.parameters.prefix(3) == [.text("shop.customer"), .asOf, .text("42")])
        let assumed = try Planner(resolved, requests: .assumed(key: "42")).countSubjects()
        #expect(assumed.sql.contains(#"(s."id"::text = $3 OR "# + pending + ")"), "\(assumed.sql)")
        #expect(!assumed.sql.contains("42"))
    }

    @Test func exemptionValuesAreBoundAndTypedThroughTheRowType() throws {
        let planner = try Planner(
            Self.resolved(
                exemptions: [
                    ResolvedExemption(
                        index: 0, exemption: .column(ColumnName("country"), .in([.string("SE'; DROP"), .null])),
                        table: Self.customer, path: []),
                    ResolvedExemption(
                        index: 1, exemption: .column(ColumnName("status"), .notIn([.string("closed")])),
                        table: Self.customer, path: []),
                ],
                steps: [Self.step(Self.customer, [], .subject, .delete)]))
        let count = planner.countSubjects()
        #expect(!count.sql.contains("DROP"))
        #expect(count.sql.contains(#"jsonb_populate_recordset(NULL::"shop"."customer", $3::jsonb)"#))
        #expect(count.sql.contains(#"OR s."country" IS NULL)"#))
        #expect(count.sql.contains(#"(s."status" IS NOT NULL AND s."status" NOT IN ("#))
        #expect(count.parameters.contains(.json(#"[{"country":"SE'; DROP"}]"#)))
    }

    /// With a primary key, fake_email hashes the key rather than the whole row (whose text form costs more than
    /// the rest of the update).
    @Test(arguments: [(["id"], #"x."id"::text"#), (["id", "part"], #"ROW(x."id", x."part")::text"#)])
    func fakeEmailHashesThePrimaryKey(key: [String], identity: String) throws {
        let anonymize = ResolvedStep.Action.anonymize([
            ResolvedAnonymization(
                column: ColumnName("email"), type: "text", strategy: .fakeEmail, value: nil, detaches: nil)
        ])
        let planner = try Planner(
            Self.resolved(steps: [Self.step(Self.order, [Self.orderHop], .owned, anonymize, primaryKey: key)]))
        let update = try #require(planner.stepPlans()[0].act)
        #expect(update.sql.contains("convert_to($2 || 'shop.order.email:' || \(identity), 'UTF8')"))
    }

    @Test func ownedStepsReturnPerSubjectCountsOnly() throws {
        let anonymize = ResolvedStep.Action.anonymize([
            ResolvedAnonymization(
                column: ColumnName("email"), type: "text", strategy: .fakeEmail, value: nil, detaches: nil),
            ResolvedAnonymization(
                column: ColumnName("full_name"), type: "text", strategy: .redact(nil), value: .string("[redacted]"),
                detaches: nil),
            ResolvedAnonymization(
                column: ColumnName("customer_id"), type: "bigint", strategy: .null, value: nil, detaches: nil),
            ResolvedAnonymization(
                column: ColumnName("birth_date"), type: "date", strategy: .truncate(.year), value: nil, detaches: nil),
            ResolvedAnonymization(
                column: ColumnName("national_id"), type: "text", strategy: .hash, value: nil, detaches: nil),
        ])
        let planner = try Planner(
            Self.resolved(steps: [
                Self.step(Self.order, [Self.orderHop], .owned, anonymize),
                Self.step(Self.customer, [], .subject, .delete),
            ]))
        let plans = planner.stepPlans()
        let update = try #require(plans[0].act)
        #expect(
            update.sql.hasPrefix(#"WITH d AS (UPDATE "shop"."order" AS x SET "email" = (CASE WHEN x."email" IS NULL"#))
        // fake_email hashes the table, the column and, for a table without a primary key, the whole old row.
        #expect(
            update.sql.contains(
                #"'anon-' || substr(encode(sha256(convert_to($1 || 'shop.order.email:' || x::text, 'UTF8')), 'hex'), 1, 19) || '@example.invalid'"#
            ))
        #expect(update.sql.contains(#""full_name" = $2::text::text"#))
        #expect(update.sql.contains(#""birth_date" = date_trunc('year', x."birth_date")::date"#))
        #expect(
            update.sql.contains(
                #""national_id" = encode(sha256(convert_to($1 || x."national_id"::text, 'UTF8')), 'hex')::text"#))
        #expect(update.sql.contains(#""customer_id" = NULL, "birth_date""#))
        // A path from the subject key starts at the batch's keys, not at the subject rows, and matches the link
        // column against all of them (one index scan in table order); the subject comes from the keys, as the
        // update nulls the link.
        #expect(
            update.sql.contains(
                #"'hex')::text FROM unnest($3::bigint[]) AS s("id") WHERE x."customer_id" = s."id" AND x."customer_id" = ANY ($3::bigint[]) RETURNING s."id"::text AS subject)"#
            ))
        #expect(update.sql.hasSuffix("SELECT subject, count(*) AS rows FROM d GROUP BY subject"))
        #expect(update.parameters == [.salt, .text("[redacted]"), .keys])
        let delete = try #require(plans[1].act)
        #expect(delete.sql.contains(#"DELETE FROM "shop"."customer" AS x WHERE x."id" = ANY ("#))
    }

    /// Rows that hold the subject key, and keep it, are found by that column alone, which names their subject.
    @Test func ownedRowsOnTheSubjectKeyNeedNoJoinToTheBatchsKeys() throws {
        let anonymize = ResolvedStep.Action.anonymize([
            ResolvedAnonymization(
                column: ColumnName("full_name"), type: "text", strategy: .redact(nil), value: .string("[redacted]"),
                detaches: nil)
        ])
        let planner = try Planner(
            Self.resolved(steps: [
                Self.step(Self.order, [Self.orderHop], .owned, anonymize),
                Self.step(Self.order, [Self.orderHop], .owned, .delete),
                Self.step(Self.customer, [], .subject, .delete),
            ]))
        let plans = planner.stepPlans()
        let keys = #"x."customer_id" = ANY ($1::bigint[])"#
        let subject = #"RETURNING x."customer_id"::bigint::text AS subject)"#
        #expect(
            try #require(plans[0].act).sql.hasPrefix(
                #"WITH d AS (UPDATE "shop"."order" AS x SET "full_name" = $2::text::text WHERE "# + keys + " " + subject
            ))
        #expect(
            try #require(plans[1].act).sql.hasPrefix(
                #"WITH d AS (DELETE FROM "shop"."order" AS x WHERE "# + keys + " " + subject))
    }

    @Test func aPathFromAnotherSubjectColumnJoinsTheSubjectRow() throws {
        let line = QualifiedName(schema: "shop", name: "order_line")
        let lineHop = Self.hop(Self.order, "id", line, "order_id", .child)
        let byEmail = Self.hop(Self.customer, "email", Self.order, "email", .child)
        let planner = try Planner(
            Self.resolved(steps: [
                Self.step(line, [Self.orderHop, lineHop], .owned, .delete),
                Self.step(Self.order, [byEmail], .owned, .delete),
                Self.step(Self.customer, [], .subject, .delete),
            ]))
        let plans = planner.stepPlans()
        // Two hops from the key: the batch's keys, then the first table by its link.
        #expect(
            try #require(plans[0].act).sql.hasPrefix(
                #"WITH d AS (DELETE FROM "shop"."order_line" AS x USING unnest($1::bigint[]) AS s("id"), "shop"."order" AS j1 WHERE j1."customer_id" = s."id" AND x."order_id" = j1."id" AND j1."customer_id" = ANY ("#
            ))
        #expect(try #require(plans[0].act).sql.contains(#"RETURNING s."id"::text AS subject"#))
        // A link from another column of the subject row needs the row.
        #expect(
            try #require(plans[1].act).sql.hasPrefix(
                #"WITH d AS (DELETE FROM "shop"."order" AS x USING "shop"."customer" AS s WHERE x."email" = s."email" AND s."id" = ANY ("#
            ))
        #expect(try #require(plans[1].act).sql.contains(#"RETURNING s."id"::text AS subject"#))
    }

    @Test func rowsTheSubjectPointsToAreCapturedLockedAndJudgedShared() throws {
        let store = QualifiedName(schema: "shop", name: "store")
        let planner = try Planner(
            Self.resolved(steps: [
                Self.step(
                    Self.address, [Self.addressHop], .referenced,
                    .anonymize([
                        ResolvedAnonymization(
                            column: ColumnName("phone"), type: "text", strategy: .null, value: nil, detaches: nil)
                    ]),
                    referencedBy: [
                        ForeignKeyReference(
                            table: Self.customer, columns: [ColumnName("address_id")], foreignKey: "c",
                            referencedColumns: [ColumnName("id")]),
                        ForeignKeyReference(
                            table: store, columns: [ColumnName("address_id")], foreignKey: "s",
                            referencedColumns: [ColumnName("id")]),
                    ]),
                Self.step(Self.customer, [], .subject, .delete),
            ]))
        let plan = planner.stepPlans()[0]
        let capture = try #require(plan.capture)
        #expect(capture.sql.contains(#"jsonb_build_object('id', x."id")::text AS row"#))
        #expect(
            capture.sql.contains(
                #"EXISTS (SELECT FROM "shop"."customer" AS o1 WHERE o1."address_id" = x."id" AND NOT (o1."id" IN (SELECT unnest($1::bigint[])) OR coalesce((o1."last_seen_at" < "#
            ), "a customer shares the address unless it is one of the batch's subjects or due itself")
        #expect(capture.sql.contains(#"EXISTS (SELECT FROM "shop"."store" AS o2 WHERE o2."address_id" = x."id")"#))
        // Rows to anonymize are locked as strongly as their update needs: rows referencing them can still be inserted.
        #expect(capture.sql.contains("FOR NO KEY UPDATE OF x)"))
        // Rows already as the step leaves them (anonymized before, and not changed since) are neither captured nor
        // counted: a null, a constant or a truncation is recognised by its values, and nothing is recorded.
        let done = #"jsonb_build_array(x."phone") IS DISTINCT FROM jsonb_build_array(NULL)"#
        #expect(capture.sql.contains(done))
        #expect(planner.dryRunCounts().sql.contains(done))
        #expect(!capture.sql.contains("processed_row"))
        #expect(capture.sql.contains("0 AS step"), "no twin: rows count under the step itself")
        let act = try #require(plan.actOnRows)
        #expect(
            act.sql.contains(
                #"WHERE x."id" IN (SELECT v."id" FROM jsonb_populate_recordset(NULL::"shop"."address", $1::jsonb) AS v)"#
            ))
        #expect(!act.sql.contains("processed_row"))
        #expect(act.parameters == [.rows])
    }

    @Test func aDryRunCountsEverythingInOneStatementOfJoins() throws {
        let store = QualifiedName(schema: "shop", name: "store")
        let phone = ResolvedStep.Action.anonymize([
            ResolvedAnonymization(column: ColumnName("phone"), type: "text", strategy: .null, value: nil, detaches: nil)
        ])
        let references = [
            ForeignKeyReference(
                table: Self.customer, columns: [ColumnName("address_id")], foreignKey: "c",
                referencedColumns: [ColumnName("id")]),
            ForeignKeyReference(
                table: Self.order, columns: [ColumnName("shipping_address_id")], foreignKey: "o",
                referencedColumns: [ColumnName("id")]),
            ForeignKeyReference(
                table: store, columns: [ColumnName("address_id")], foreignKey: "s",
                referencedColumns: [ColumnName("id")]),
        ]
        let shippingHop = Self.hop(Self.order, "shipping_address_id", Self.address, "id", .parent)
        let planner = try Planner(
            Self.resolved(
                exemptions: [
                    ResolvedExemption(
                        index: 0, exemption: .column(ColumnName("legal_hold"), .is(.true)), table: Self.customer,
                        path: [])
                ],
                steps: [
                    Self.step(Self.order, [Self.orderHop], .owned, .delete),
                    Self.step(Self.address, [Self.addressHop], .referenced, phone, referencedBy: references),
                    Self.step(
                        Self.address, [Self.orderHop, shippingHop], .referenced, phone, referencedBy: references),
                    Self.step(Self.customer, [], .subject, .delete),
                ]))
        let sql = planner.dryRunCounts().sql
        // The due subjects are a CTE the server inlines (it sizes joins by the subject table's statistics) ...
        #expect(
            sql.contains(#"due AS NOT MATERIALIZED (\#n  SELECT s."id", s."address_id" FROM "shop"."customer" AS s"#))
        #expect(
            sql.contains(
                #"AND NOT coalesce((s."legal_hold" IS TRUE), false)\#n    AND NOT EXISTS (SELECT FROM gallra.hold AS h"#
            ))
        // ... and every count joins them: no per-row lookup of the subject table.
        #expect(!sql.contains(#"AS e WHERE"#))
        #expect(
            sql.contains(
                #"SELECT 0, count(*), 0::bigint, 0::bigint, 0::bigint FROM "shop"."order" AS x\#nWHERE EXISTS (SELECT FROM due AS d WHERE x."customer_id" = d."id")"#
            ))
        #expect(
            sql.contains(
                #"SELECT 3, count(*) FILTER (WHERE NOT exempted AND NOT held), 0::bigint, 0::bigint, 0::bigint FROM subjects"#
            ))
        // The keys referenced from outside the subjects' data: once for both steps on shop.address.
        #expect(
            sql.contains(
                #"o1 AS MATERIALIZED (\#n  SELECT o."address_id" AS "id" FROM "shop"."customer" AS o WHERE NOT EXISTS (SELECT FROM due AS d WHERE d."id" = o."id")\#n  UNION SELECT o."shipping_address_id" AS "id" FROM "shop"."order" AS o WHERE NOT EXISTS (SELECT FROM due AS d WHERE o."customer_id" = d."id")\#n  UNION SELECT o."address_id" AS "id" FROM "shop"."store" AS o)"#
            ))
        #expect(!sql.contains("o2 AS"))
        #expect(sql.components(separatedBy: #"NOT EXISTS (SELECT FROM o1 WHERE o1."id" = x."id")"#).count == 3)
        // Whether a row still needs the step is computed for the rows reached, not as a filter on the whole table.
        #expect(
            sql.contains(
                #"SELECT 1, a.acted, t.reached - a.acted, 0::bigint, 0::bigint\#nFROM (SELECT count(*) FILTER (WHERE gallra_pending) AS reached FROM r1) AS t"#
            ))
        #expect(
            sql.components(separatedBy: #"SELECT x."id", jsonb_build_array(x."phone") IS DISTINCT FROM"#).count == 3)
        #expect(!sql.contains("AND jsonb_build_array"))
        // The second step on shop.address leaves out the rows the first reaches, by its set of them.
        #expect(sql.contains(#"AND NOT EXISTS (SELECT FROM r1 WHERE r1."id" = x."id"))"#))
    }

    @Test func hashedRowsAreRecordedAndTwinsShareThem() throws {
        let hashPhone = ResolvedStep.Action.anonymize([
            ResolvedAnonymization(column: ColumnName("phone"), type: "text", strategy: .hash, value: nil, detaches: nil)
        ])
        let orderHop = Self.hop(Self.customer, "id", Self.order, "customer_id", .child)
        let shippingHop = Self.hop(Self.order, "shipping_address_id", Self.address, "id", .parent)
        let planner = try Planner(
            Self.resolved(steps: [
                Self.step(Self.address, [Self.addressHop], .referenced, hashPhone),
                Self.step(Self.address, [orderHop, shippingHop], .referenced, hashPhone),
                Self.step(Self.customer, [], .subject, .delete),
            ]))
        let plans = planner.stepPlans()
        let path = "shop.customer.address_id -> shop.address.id"
        // Twins are captured and acted on together, at the first one's turn.
        #expect(plans[1].capture == nil && plans[1].actOnRows == nil)
        let capture = try #require(plans[0].capture)
        // The pairs read each row's key from the link before it: the rows themselves are looked up once, in `r`.
        #expect(
            capture.sql.contains(
                #"WITH p AS (SELECT s."id"::text AS subject, s."address_id" AS k1, 0 AS via FROM "shop"."customer" AS s WHERE s."id" = ANY ($1::bigint[]) AND s."address_id" IS NOT NULL"#
            ))
        #expect(
            capture.sql.contains(
                #"UNION ALL SELECT s."id"::text AS subject, l."shipping_address_id" AS k1, 1 AS via FROM unnest($1::bigint[]) AS s("id"), "shop"."order" AS l WHERE l."customer_id" = s."id" AND l."customer_id" = ANY ($1::bigint[]) AND l."shipping_address_id" IS NOT NULL)"#
            ))
        // A hashing step is done once `gallra.processed_row` holds the fingerprint of what it wrote: a scalar
        // probe per row, under the first twin's path.
        #expect(
            capture.sql.contains(
                #"AND pr.row_key = jsonb_build_object('id', x."id")::text) IS DISTINCT FROM encode(sha256(convert_to(jsonb_build_array(x."phone")::text, 'UTF8')), 'hex')"#
            ))
        #expect(capture.parameters.contains(.text(path)))
        let act = try #require(plans[0].actOnRows)
        #expect(act.sql.contains("INSERT INTO gallra.processed_row"))
        #expect(act.parameters == [.salt, .rows, .policyName, .text("shop.address"), .text(path), .runID])
        // A row counts under the billing step when a due subject reaches it that way, else under the shipping step;
        // the batch's own subjects answer first, without a lookup.
        #expect(
            capture.sql.contains(
                #"(CASE WHEN v.via = 0 THEN 0 WHEN EXISTS (SELECT FROM "shop"."customer" AS s WHERE x."id" = s."address_id""#
            ))
        #expect(capture.sql.contains("(SELECT k1, min(via) AS via FROM p GROUP BY k1) AS v"))
        #expect(capture.sql.contains("THEN 0 ELSE 1 END) AS step"))
        // The dry run leaves out of the shipping step the rows a due subject reaches as its billing address.
        #expect(
            planner.dryRunCounts().sql.contains(
                #"AND NOT EXISTS (SELECT FROM due AS d WHERE x."id" = d."address_id")"#))
    }

    @Test func identifiersAreQuotedAndBadTypeNamesRefused() throws {
        #expect(SQLIdentifier.quoted(#"Mixed "Case""#) == #""Mixed ""Case""""#)
        #expect(SQLIdentifier.quoted(schema: "Shop", name: "Order Items") == #""Shop"."Order Items""#)
        var policy = try Self.resolved(steps: [Self.step(Self.customer, [], .subject, .delete)])
        policy.subject.keyType = "bigint); DROP TABLE x; --"
        #expect(throws: PlanError.self) { try Planner(policy) }
    }
}
