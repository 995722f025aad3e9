import GallraPolicy
import Testing

/// Shapes the engine cannot run, refused by the validator with where and why: each test names what PostgreSQL or
/// the planner would otherwise refuse in the middle of a run.
@Suite("Validator: shapes the engine refuses")
struct ValidatorShapeTests {
    static func g(_ name: String) -> QualifiedName { QualifiedName(schema: "g", name: name) }

    static let mood = CatalogColumn(
        name: "mood", type: "g.mood", baseType: "mood", category: .enumeration, enumLabels: ["calm", "busy"])

    static let catalog = Catalog(tables: [
        CatalogTable(
            name: g("customer"),
            columns: [
                .int8("id"), .int4("k2"), .timestamptz("seen", null: true), .int4("score", null: true), mood,
                .int8("account_id", null: true),
                CatalogColumn(name: "odd", type: "g.\"odd-type\"", baseType: "odd-type", category: .string),
            ],
            primaryKey: ["id"], uniqueKeys: [["id", "k2"]],
            foreignKeys: [key("customer_account_id_fkey", ["account_id"], g("account"))],
            checks: [
                CatalogCheck(
                    name: "customer_score_check", columns: ["score"], definition: "CHECK ((score > 0))",
                    acceptsNull: true, acceptsRedaction: false)
            ]),
        CatalogTable(name: g("account"), columns: [.int8("id")], primaryKey: ["id"]),
        CatalogTable(
            name: g("item"), columns: [.int8("id"), .int8("account_id")], primaryKey: ["id"],
            foreignKeys: [key("item_account_id_fkey", ["account_id"], g("account"))]),
        CatalogTable(
            name: g("line"), columns: [.int8("id"), .int8("pid", null: true), .int4("pk2", null: true)],
            primaryKey: ["id"],
            foreignKeys: [
                ForeignKey(
                    name: "line_pid_pk2_fkey", columns: ["pid", "pk2"], referencedTable: g("customer"),
                    referencedColumns: ["id", "k2"], onDelete: .cascade, onUpdate: .cascade, matchFull: true)
            ]),
        CatalogTable(
            name: g("note"), columns: [.int8("id"), .int8("customer_id")], primaryKey: ["id"],
            foreignKeys: [key("note_customer_id_fkey", ["customer_id"], g("customer"), ["id"], .setNull)]),
        // a.customer_id links a to the subject; b hangs from a, and a also references b.
        CatalogTable(
            name: g("a"), columns: [.int8("id"), .int8("customer_id", null: true), .int8("b_ref", null: true)],
            primaryKey: ["id"],
            foreignKeys: [
                key("a_customer_id_fkey", ["customer_id"], g("customer")), key("a_b_ref_fkey", ["b_ref"], g("b")),
            ]),
        CatalogTable(
            name: g("b"), columns: [.int8("id"), .int8("a_id")], primaryKey: ["id"],
            foreignKeys: [key("b_a_id_fkey", ["a_id"], g("a"))]),
    ])

    func errors(_ data: String) -> [String] {
        let yaml = """
            policy: p
            subject: { table: g.customer, key: id }
            expires: { inactive_for: 1 year, activity: seen }
            data:
            \(data)
            """
        let result = validation(yaml, against: Self.catalog)
        return result.errors.map { "\($0.location.map { "\($0.line):\($0.column)" } ?? "-") \($0.message)" }
    }

    @Test("a parent link followed by a child link: the engine follows rows the subject points to only at the end")
    func parentThenChild() {
        #expect(
            errors("  - { table: g.item, through: g.account, delete: true }") == [
                "5:14 data[0] reaches g.item through a parent link (g.customer points to g.account) followed by child links; gallra follows rows the subject points to only as the last links of a path. Reach g.item from the subject through child links only (through: the tables that reference the subject), or end the path at g.account"
            ])
        #expect(errors("  - { table: g.account, delete: true }") == [])
    }

    @Test("an owned step that a step it must follow cuts off: only rows the subject points to are identified ahead")
    func ownedIdentifiedAhead() {
        #expect(
            errors(
                """
                  - { table: g.a, anonymize: { customer_id: null, b_ref: null } }
                  - { table: g.b, through: g.a, via: a_id, delete: true }
                """) == [
                    "6:14 data[1] (g.b) must run after data[0] (g.a), which breaks the path to its rows; gallra identifies rows ahead only for rows the subject points to. Link g.b to the subject without g.a (through:, via:), or let its rows go with a foreign key ON DELETE CASCADE"
                ])
    }

    @Test("a CHECK constraint: null and redact when the server said they pass, nothing it cannot evaluate")
    func checkConstraints() {
        #expect(errors("  - { table: g.customer, anonymize: { score: null } }") == [])
        #expect(
            errors("  - { table: g.customer, anonymize: { score: redact } }") == [
                "5:46 anonymize: score of g.customer is checked by customer_score_check (CHECK ((score > 0))), which fails with the constant redact writes; a row that breaks it fails at run time. Instead use null (which it allows), anonymize other columns, or delete the rows"
            ])
        #expect(
            errors("  - { table: g.customer, anonymize: { score: { set: 3 } } }") == [
                "5:46 anonymize: score of g.customer is checked by customer_score_check (CHECK ((score > 0))), which is an expression gallra cannot evaluate for set(3) before a run; a row that breaks it fails at run time. Instead use null (which it allows), anonymize other columns, or delete the rows"
            ])
    }

    @Test("an enum column takes only its labels")
    func enumLabels() {
        #expect(errors("  - { table: g.customer, anonymize: { mood: { set: calm } } }") == [])
        #expect(
            errors("  - { table: g.customer, anonymize: { mood: { set: happy } } }") == [
                #"5:45 anonymize: set: "happy" is not a label of the enum g.mood of mood; its labels are "calm", "busy""#
            ])
    }

    @Test("a MATCH FULL key is nulled whole")
    func matchFull() {
        #expect(
            errors("  - { table: g.line, anonymize: { pid: null } }") == [
                "5:40 anonymize: line_pid_pk2_fkey is MATCH FULL over g.line.(pid, pk2): its columns must be all null or all set, so nulling pid alone fails the key; also set pk2: null, or delete the rows"
            ])
        #expect(errors("  - { table: g.line, anonymize: { pid: null, pk2: null } }") == [])
    }

    @Test("a key others reference is not changed, whatever its ON UPDATE does")
    func onUpdate() {
        #expect(
            errors("  - { table: g.customer, anonymize: { k2: { set: 1 } } }") == [
                "5:43 anonymize: k2 of g.customer is referenced by g.line through line_pid_pk2_fkey; changing it would change those rows too (ON UPDATE CASCADE). Anonymize other columns, or delete the rows"
            ])
    }

    @Test("ON DELETE SET NULL into a NOT NULL column fails the delete")
    func setNullIntoNotNull() {
        let found = errors("  - { table: g.customer, delete: true }")
        #expect(
            found.contains {
                $0.hasPrefix(
                    "5:14 deleting g.customer (data[0]) sets g.note.customer_id to NULL through note_customer_id_fkey (ON DELETE SET NULL), but customer_id is NOT NULL: the delete fails while such rows remain. Delete them too: add the data point - { table: g.note, delete: true }"
                )
            }, "\(found)")
    }

    @Test("a type whose name the planner does not splice into a cast")
    func uncastableType() {
        #expect(
            errors("  - { table: g.customer, anonymize: { odd: redact } }") == [
                #"5:44 anonymize: odd is of type g."odd-type", whose name gallra does not write into SQL (only letters, digits, _, spaces, parentheses, dots, commas, double quotes and brackets). Rename the type, or anonymize other columns, or delete the rows"#
            ])
    }
}
