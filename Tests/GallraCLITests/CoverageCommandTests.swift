import Foundation
import Testing

/// `gallra policy coverage`, and its count in `gallra policy validate`.
@Suite("gallra policy coverage")
struct CoverageCommandTests {
    /// Tables reached from a subject table of a stored policy that is not disabled, by following foreign keys to the
    /// tables that reference it (pg_constraint), minus the tables the policies over that subject table name in
    /// data: written here in SQL, independently of the catalog reader and the analysis.
    static let uncoveredTablesSQL = """
        WITH RECURSIVE policies AS (
            SELECT definition::jsonb AS d FROM gallra.policy_latest WHERE state <> 'disabled'
        ), subjects AS (
            SELECT DISTINCT to_regclass(d->'subject'->>'table') AS subject FROM policies
        ), reached (subject, rel, path) AS (
            SELECT subject, subject, ARRAY[subject] FROM subjects
            UNION ALL
            SELECT r.subject, k.conrelid, r.path || k.conrelid
            FROM reached AS r JOIN pg_constraint AS k ON k.contype = 'f' AND k.confrelid = r.rel AND k.conparentid = 0
            WHERE NOT k.conrelid = ANY (r.path)
        ), named AS (
            SELECT to_regclass(p.d->'subject'->>'table') AS subject, to_regclass(e->>'table') AS rel
            FROM policies AS p, jsonb_array_elements(p.d->'data') AS e
        )
        SELECT coalesce(string_agg(DISTINCT n.nspname || '.' || c.relname, ','), '')
        FROM reached AS r JOIN pg_class AS c ON c.oid = r.rel JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE r.rel <> r.subject AND NOT EXISTS (SELECT FROM named WHERE named.subject = r.subject AND named.rel = r.rel)
        """

    /// Columns named with one of the personal words as a whole snake_case word, neither boolean nor in a foreign
    /// key, in tables that are no subject table and no data point of a policy that is not disabled.
    static let personalColumnsSQL = """
        WITH policies AS (
            SELECT definition::jsonb AS d FROM gallra.policy_latest WHERE state <> 'disabled'
        ), covered AS (
            SELECT to_regclass(d->'subject'->>'table') AS rel FROM policies
            UNION SELECT to_regclass(e->>'table') FROM policies, jsonb_array_elements(d->'data') AS e
        )
        SELECT coalesce(string_agg(n.nspname || '.' || c.relname || '.' || a.attname, ','
                                   ORDER BY n.nspname, c.relname, a.attnum), '')
        FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('gallra', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
          AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
          AND a.atttypid <> 'boolean'::regtype
          AND a.attname ~ '(^|_)(emails?|phones?|names?|firstname|lastname|fullname|surname|address(es)?|birth(day|date)?|ip)(_|$)'
          AND NOT EXISTS (SELECT FROM pg_constraint AS k WHERE k.contype = 'f' AND k.conrelid = c.oid AND a.attnum = ANY (k.conkey))
          AND c.oid NOT IN (SELECT rel FROM covered WHERE rel IS NOT NULL)
        """

    @Test func theDemoShopsGapsAreWhatTheCatalogSays() async throws {
        try await DemoShop.with(customers: 20) { shop in
            let tables = try await shop.psql(Self.uncoveredTablesSQL)
            let columns = try await shop.psql(Self.personalColumnsSQL)
            // What the demo leaves out: order lines (kept with their anonymized orders), and the names of products
            // and stores, tables no policy covers.
            #expect(tables == "shop.order_line")
            #expect(columns == "shop.product.name,shop.store.name")

            let json = try await shop.gallra("policy", "coverage", "--format", "json")
            #expect(json.status == 0, "\(json.stderr)")
            let report = try jsonObject(json)
            let listedTables = try #require(report["tables"] as? [[String: Any]])
            #expect(listedTables.compactMap { $0["table"] as? String }.joined(separator: ",") == tables)
            let path = try #require(listedTables.first?["path"] as? [[String: Any]])
            #expect(listedTables.first?["subject_table"] as? String == "shop.customer")
            #expect(
                path.compactMap { $0["foreign_key"] as? String } == [
                    "order_customer_id_fkey", "order_line_order_id_fkey",
                ])
            #expect(path.compactMap { $0["table"] as? String } == ["shop.order", "shop.order_line"])
            let listedColumns = try #require(report["columns"] as? [[String: Any]])
            #expect(
                listedColumns.map { "\($0["table"] as? String ?? "?").\($0["column"] as? String ?? "?")" }
                    .joined(separator: ",") == columns)

            let text = try await shop.gallra("policy", "coverage")
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.stdout.contains("shop.order_line  shop.customer"), "\(text.stdout)")
            #expect(text.stdout.contains("shop.customer <- shop.order (customer_id) <- shop.order_line (order_id)"))
            #expect(text.stdout.hasSuffix("\n1 table and 2 columns no policy covers\n"), "\(text.stdout)")

            let strict = try await shop.gallra("policy", "coverage", "--strict")
            #expect(strict.status == 65, "\(strict.stderr)")
            #expect(
                strict.stderr
                    == "gallra: warning: erasure requests for shop.employee will be refused: no policy over it has "
                    + "expires: on_request; add one that says what an erasure deletes and anonymizes (docs/requests.md)\n"
                    + "gallra: 1 table and 2 columns no policy covers (--strict)\n")

            let validate = try await shop.gallra("policy", "validate", "\(shop.root)/config/policies")
            #expect(validate.status == 0, "\(validate.stderr)")
            #expect(
                validate.stdout.contains(
                    "\ncoverage: 1 table and 2 columns no policy covers; gallra policy coverage lists them\n"),
                "\(validate.stdout)")
            #expect(
                validate.stdout.contains(
                    "\nwarning: erasure requests for shop.employee will be refused: no policy over it has expires: on_request;"
                ),
                "\(validate.stdout)")
            #expect(!validate.stdout.contains("erasure requests for shop.customer"))
            let validateJSON = try jsonObject(
                try await shop.gallra("policy", "validate", "\(shop.root)/config/policies", "--format", "json"))
            let counts = try #require(validateJSON["coverage"] as? [String: Any])
            #expect(counts["tables"] as? Int == 1)
            #expect(counts["columns"] as? Int == 2)

            // Disabling the customers' main policies leaves their tables out; the draft still covers the customer.
            for name in ["inactive-customers", "erasure-requests"] {
                let disable = try await shop.gallra("policy", "disable", name)
                #expect(disable.status == 0, "\(disable.stderr)")
            }
            let wider = try jsonObject(try await shop.gallra("policy", "coverage", "--format", "json"))
            let widerTables = try await shop.psql(Self.uncoveredTablesSQL)
            let widerColumns = try await shop.psql(Self.personalColumnsSQL)
            #expect(widerTables.split(separator: ",").count == 6, "\(widerTables)")
            #expect(
                (wider["tables"] as? [[String: Any]])?.compactMap { $0["table"] as? String }.joined(separator: ",")
                    == widerTables)
            #expect(
                (wider["columns"] as? [[String: Any]])?.map {
                    "\($0["table"] as? String ?? "?").\($0["column"] as? String ?? "?")"
                }.joined(separator: ",") == widerColumns)
        }
    }

    /// A second schema whose policy covers everything: nothing listed, and --strict exits 0.
    @Test func aSchemaTheirPolicyCoversIsClean() async throws {
        try await Harness.withDatabase { _, conninfo in
            try await Harness.withTemporaryDirectory { directory in
                let schema = try await run(
                    "/usr/bin/psql",
                    [
                        conninfo, "-qX", "-v", "ON_ERROR_STOP=1", "-c",
                        """
                        CREATE SCHEMA club;
                        CREATE TABLE club.member (id bigint PRIMARY KEY, contact_email text, joined_at timestamptz);
                        CREATE TABLE club.visit (id bigint PRIMARY KEY, member_id bigint REFERENCES club.member);
                        CREATE INDEX ON club.visit (member_id);
                        CREATE TABLE club.room (id bigint PRIMARY KEY, named_by text, capacity int);
                        """,
                    ])
                try #require(schema.status == 0, "\(schema.stderr)")
                let file = "\(directory)/members.yaml"
                try """
                policy: members
                state: active
                subject: { table: club.member, key: id }
                expires: { older_than: 5 years, created: joined_at }
                data:
                  - { table: club.visit, delete: true }
                  - { table: club.member, delete: true }
                """.write(toFile: file, atomically: true, encoding: .utf8)
                for arguments in [["migrate"], ["policy", "apply", file]] {
                    let result = try await run(Harness.gallraPath, arguments + ["--database", conninfo])
                    try #require(result.status == 0, "\(arguments): \(result.stderr)")
                }
                let strict = try await run(
                    Harness.gallraPath, ["policy", "coverage", "--strict", "--database", conninfo])
                #expect(strict.status == 0, "\(strict.stderr)")
                #expect(strict.stdout.hasPrefix("every table that references a subject table is a data point"))
                let json = try jsonObject(
                    try await run(
                        Harness.gallraPath, ["policy", "coverage", "--format", "json", "--database", conninfo]))
                #expect((json["tables"] as? [Any])?.isEmpty == true)
                #expect((json["columns"] as? [Any])?.isEmpty == true)
                let validate = try await run(Harness.gallraPath, ["policy", "validate", file, "--database", conninfo])
                #expect(validate.stdout.contains("\ncoverage: 0 tables and 0 columns no policy covers\n"))
            }
        }
    }

    @Test func helpHasExamples() async throws {
        let help = try await gallra("policy", "coverage", "--help")
        #expect(help.status == 0)
        #expect(help.stdout.contains("gallra policy coverage --strict --format json"))
        #expect(help.stdout.contains("named_by"))
    }
}
