import Foundation
import Testing

/// `gallra export`: the register extract, compared with what hand-written SQL finds of each subject.
@Suite("gallra export")
struct ExportCommandTests {
    @Test func helpShowsExamples() async throws {
        let result = try await gallra("export", "--help")
        #expect(result.status == 0)
        #expect(result.stdout.contains("gallra export --subject shop.customer:1234 --out customer-1234.json"))
        #expect(result.stdout.contains("--format"))
        #expect(result.stdout.contains("docs/export.schema.json"))
    }

    /// For a sample of demo customers, every table of the extract holds exactly the rows the policies' paths reach,
    /// as SQL written here finds them; the document is valid against its schema; the extract is in the audit trail.
    @Test func demoShopExtractsHoldExactlyTheSubjectsRows() async throws {
        try await DemoShop.with(customers: 80) { shop in
            // A customer long inactive but on legal hold: exempt.
            try await shop.psql(
                """
                UPDATE shop.customer SET legal_hold = true WHERE id = (
                    SELECT id FROM shop.customer WHERE last_seen_at < now() - interval '13 months'
                    ORDER BY id DESC LIMIT 1)
                """)
            // Customers with orders, a shared address, consent events, and one with nothing but the account.
            let sample = try await shop.psql(
                """
                (SELECT id FROM shop.customer ORDER BY id LIMIT 3)
                UNION (SELECT customer_id FROM shop."order" WHERE customer_id IS NOT NULL
                       GROUP BY customer_id ORDER BY count(*) DESC, customer_id LIMIT 2)
                UNION (SELECT c.id FROM shop.customer c JOIN shop.customer d ON d.address_id = c.address_id
                       AND d.id <> c.id ORDER BY c.id LIMIT 1)
                UNION (SELECT subject_key::bigint FROM gallra.consent_event ORDER BY id LIMIT 1)
                UNION (SELECT id FROM shop.customer c WHERE NOT EXISTS
                       (SELECT FROM shop."order" o WHERE o.customer_id = c.id) ORDER BY id LIMIT 1)
                UNION (SELECT id FROM shop.customer WHERE last_seen_at < now() - interval '13 months'
                       AND legal_hold IS NOT TRUE ORDER BY id LIMIT 1)
                UNION (SELECT id FROM shop.customer WHERE last_seen_at < now() - interval '13 months'
                       AND legal_hold ORDER BY id LIMIT 1)
                """
            ).split(separator: "\n").compactMap { Int($0) }
            try #require(sample.count >= 5, "sample: \(sample)")
            var standings: Set<String> = []
            for id in sample {
                let path = "\(shop.directory)/customer-\(id).json"
                let result = try await shop.gallra(
                    "export", "--subject", "shop.customer:\(id)", "--out", path, "--audit-key-file", shop.keyFile)
                try #require(result.status == 0, "export of \(id): \(result.stderr)")
                #expect(result.stdout.isEmpty)
                try expectValidAgainstSchema(path)
                let document = try Self.document(at: path)
                #expect(document["format_version"] as? Int == 1)
                let tables = try Self.tables(document)
                #expect(tables.map(\.name).first == "shop.customer")
                let expected = try await Self.demoOracle(shop, customer: id)
                #expect(Set(tables.map(\.name)) == Set(expected.keys))
                for table in tables {
                    #expect(table.rows == expected[table.name], "customer \(id), \(table.name)")
                    #expect(table.rowCount == table.rows.count)
                }
                #expect(
                    tables.first { $0.name == "shop.newsletter_log" }?.policies
                        == ["erasure-requests", "inactive-customers", "revoked-newsletter-consent"])
                #expect(
                    tables.first { $0.name == "shop.order" }?.policies == ["erasure-requests", "inactive-customers"])
                // Where the customer stands under inactive-customers: its rule and exemption, written here.
                let policies = try #require(document["policies"] as? [[String: Any]])
                let standing = try await shop.psql(
                    """
                    SELECT CASE WHEN last_seen_at < now() - interval '1 year'
                                THEN CASE WHEN legal_hold THEN 'exempt' ELSE 'due' END
                                ELSE 'not_due' END
                    FROM shop.customer WHERE id = \(id)
                    """)
                #expect(
                    policies.first { $0["name"] as? String == "inactive-customers" }?["standing"] as? String == standing
                )
                standings.insert(standing)
                // Why, as gallra explain says it: the exemption that holds, or when the customer expires.
                let why = try #require(
                    policies.first { $0["name"] as? String == "inactive-customers" }?["why"] as? [String: Any])
                switch standing {
                case "exempt":
                    #expect(why["verdict"] as? String == "exempt")
                    #expect(why["exemptions"] as? [String] == ["except[0] legal_hold is true"])
                case "not_due":
                    let expires = try await shop.psql(
                        """
                        SELECT coalesce(to_char((last_seen_at + interval '1 year') AT TIME ZONE 'UTC',
                                                'YYYY-MM-DD"T"HH24:MI:SS'), 'never seen')
                        FROM shop.customer WHERE id = \(id)
                        """)
                    if expires == "never seen" {
                        #expect(why["verdict"] as? String == "no_date")
                        #expect(why["expires_at"] is NSNull)
                    } else {
                        #expect(why["verdict"] as? String == "not_yet")
                        #expect((why["expires_at"] as? String)?.hasPrefix(expires) == true, "\(why) \(expires)")
                    }
                default:
                    #expect(why["verdict"] as? String == standing)
                }
                let consent = try #require(document["consent"] as? [[String: Any]])
                let events = try await shop.psql(
                    "SELECT count(*) FROM gallra.consent_event WHERE subject_key = '\(id)'")
                #expect(consent.count == Int(events))
                let processing = try #require(document["processing"] as? [String: Any])
                #expect(processing["available"] as? Bool == true)
                #expect(processing["subject_digest"] as? String == shop.digest(customer: id))
            }

            #expect(standings == ["due", "exempt", "not_due"])

            // Each extract is listed by lookup, and the trail stays intact.
            let lookup = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:\(sample[0])", "--audit-key-file", shop.keyFile,
                "--format", "json")
            #expect(lookup.status == 0, "\(lookup.stderr)")
            let exports = try #require(try jsonObject(lookup)["exports"] as? [[String: Any]])
            #expect(exports.count == 1)
            #expect(exports.first?["format"] as? String == "json")
            #expect(exports.first?["database_role"] as? String == "postgres")
            let text = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:\(sample[0])", "--audit-key-file", shop.keyFile)
            #expect(text.stdout.contains("extracts (gallra export):"), "\(text.stdout)")
            let stored = try await shop.psql(
                "SELECT count(*), count(DISTINCT subject_digest), bool_and(format = 'json') FROM gallra.audit_export")
            #expect(stored == "\(sample.count)|\(sample.count)|t")
            let verify = try await shop.gallra("audit", "verify")
            #expect(verify.status == 0, "\(verify.stdout)")
            #expect(verify.stdout.contains("\(sample.count) extract records"), "\(verify.stdout)")

            // A second extract lists the first among the subject's earlier extracts.
            let again = try await shop.gallra(
                "export", "--subject", "shop.customer:\(sample[0])", "--audit-key-file", shop.keyFile)
            let earlier = try #require(
                (try Self.parse(again.stdout)["processing"] as? [String: Any])?["exports"] as? [[String: Any]])
            #expect(earlier.count == 1)
        }
    }

    /// The audit trail cannot tell who was changed: editing an extract record breaks `audit verify`.
    @Test func anEditedExtractRecordBreaksVerify() async throws {
        try await DemoShop.with(customers: 10) { shop in
            for id in [1, 2] {
                let result = try await shop.gallra(
                    "export", "--subject", "shop.customer:\(id)", "--audit-key-file", shop.keyFile)
                try #require(result.status == 0, "\(result.stderr)")
            }
            try await shop.psql(
                """
                ALTER TABLE gallra.audit_export DISABLE TRIGGER audit_export_append_only;
                UPDATE gallra.audit_export SET os_user = 'someone-else' WHERE sequence = 1;
                """)
            let verify = try await shop.gallra("audit", "verify")
            #expect(verify.status == 65)
            #expect(verify.stdout.contains("extract record 1 was changed"), "\(verify.stdout)")
        }
    }

    /// Errors: no such subject (66), a table no policy covers (65), a format not available (64), an existing
    /// --out file (64); a written file is 0600; without an audit key the extract says so.
    @Test func errorsAndFiles() async throws {
        try await DemoShop.with(customers: 10) { shop in
            let missing = try await shop.gallra("export", "--subject", "shop.customer:99999")
            #expect(missing.status == 66)
            #expect(missing.stderr.contains("no subject of shop.customer has that key"), "\(missing.stderr)")
            #expect(!missing.stderr.contains("99999"))
            // By what customer service knows: the same rows as by the key.
            let email = try await shop.psql("SELECT email FROM shop.customer WHERE id = 3")
            let byEmail = try jsonObject(
                try await shop.gallra(
                    "export", "--subject", "shop.customer:email=\(email)", "--audit-key-file", shop.keyFile))
            let byKey = try jsonObject(
                try await shop.gallra("export", "--subject", "shop.customer:3", "--audit-key-file", shop.keyFile))
            #expect((byEmail["tables"] as? NSArray)?.isEqual(to: byKey["tables"] as? [Any] ?? []) == true)
            let nobody = try await shop.gallra("export", "--subject", "shop.customer:email=nobody@example.invalid")
            #expect(nobody.status == 66)
            #expect(!nobody.stderr.contains("nobody@example.invalid"), "\(nobody.stderr)")
            let malformed = try await shop.gallra("export", "--subject", "shop.customer:abc")
            #expect(malformed.status == 66)
            #expect(malformed.stderr.contains("not a valid bigint"), "\(malformed.stderr)")
            let uncovered = try await shop.gallra("export", "--subject", "shop.product:1")
            #expect(uncovered.status == 65)
            #expect(uncovered.stderr.contains("no active or draft policy has its subjects in shop.product"))
            let unknown = try await shop.gallra("export", "--subject", "shop.customer:1", "--format", "pdf")
            #expect(unknown.status == 64)
            #expect(unknown.stderr.contains("pdf"), "\(unknown.stderr)")
            let unqualified = try await shop.gallra("export", "--subject", "customer:1")
            #expect(unqualified.status == 64)

            let path = "\(shop.directory)/extract.json"
            let written = try await shop.gallra("export", "--subject", "shop.customer:1", "--out", path)
            #expect(written.status == 0, "\(written.stderr)")
            #expect(written.stderr.contains("no audit key"))
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            try expectValidAgainstSchema(path)
            let processing = try #require(try Self.document(at: path)["processing"] as? [String: Any])
            #expect(processing["available"] as? Bool == false)
            #expect((processing["reason"] as? String)?.contains("no audit key") == true)
            #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_export WHERE subject_digest IS NULL") == "1")

            try "keep me".write(toFile: path, atomically: true, encoding: .utf8)
            let refused = try await shop.gallra("export", "--subject", "shop.customer:1", "--out", path)
            #expect(refused.status == 64)
            #expect(refused.stderr.contains("--force"), "\(refused.stderr)")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me")
            let forced = try await shop.gallra("export", "--subject", "shop.customer:1", "--out", path, "--force")
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(try Self.document(at: path)["format_version"] as? Int == 1)
            // A failed extract leaves no file and no record.
            let failed = try await shop.gallra(
                "export", "--subject", "shop.customer:99999", "--out", "\(shop.directory)/none.json")
            #expect(failed.status == 66)
            #expect(!FileManager.default.fileExists(atPath: "\(shop.directory)/none.json"))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: shop.directory)
                .filter { $0.contains(".gallra-") }
            #expect(leftovers.isEmpty)
            // The two by key and by email above, and the two written to a file.
            #expect(try await shop.psql("SELECT count(*) FROM gallra.audit_export") == "4")
        }
    }

    /// A schema with the types an extract must carry faithfully: jsonb, json, bytea, numeric, floats, timestamptz,
    /// boolean, dates, arrays, a quoted mixed-case table, a partitioned table, a row shared by subjects, and a table
    /// reached by two policies.
    @Test func typedValuesOnASecondSchema() async throws {
        try await Harness.withDatabase { database, conninfo in
            try await Harness.withTemporaryDirectory { directory in
                try await Harness.psql(Self.secondSchema, database: database)
                let migrate = try await run(Harness.gallraPath, ["migrate", "--database", conninfo])
                try #require(migrate.status == 0, "\(migrate.stderr)")
                try Self.secondPolicies.write(toFile: "\(directory)/ext.yaml", atomically: true, encoding: .utf8)
                let apply = try await run(
                    Harness.gallraPath, ["policy", "apply", "--database", conninfo, "\(directory)/ext.yaml"])
                try #require(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
                let keyFile = "\(directory)/audit-key"
                try "ZXh0cmFjdC10ZXN0cy1hdWRpdC1rZXktMDEyMzQ1Njc4OWFiY2RlZg==\n".write(
                    toFile: keyFile, atomically: true, encoding: .utf8)

                for id in [1, 2, 5, 6, 11] {
                    let path = "\(directory)/person-\(id).json"
                    let result = try await run(
                        Harness.gallraPath,
                        [
                            "export", "--subject", "\"Ext\".\"Person\":\(id)", "--out", path, "--audit-key-file",
                            keyFile, "--database", conninfo,
                        ])
                    try #require(result.status == 0, "export of \(id): \(result.stderr)")
                    try expectValidAgainstSchema(path)
                    let document = try Self.document(at: path)
                    let tables = try Self.tables(document)
                    // The subject table, then each policy's data points in order, policies by name.
                    #expect(
                        tables.map(\.name) == ["\"Ext\".\"Person\"", "\"Ext\".note", "\"Ext\".event", "\"Ext\".home"])
                    #expect(tables.first { $0.name == "\"Ext\".note" }?.policies == ["ext-notes", "ext-people"])
                    #expect(tables.first { $0.name == "\"Ext\".event" }?.policies == ["ext-people"])
                    for table in tables {
                        let oracle = try #require(Self.secondOracle[table.name])
                        let expected = try await Self.rows(
                            oracle.replacingOccurrences(of: "$ID", with: String(id)), database: database)
                        #expect(table.rows == expected, "person \(id), \(table.name)")
                    }
                    let policies = try #require(document["policies"] as? [[String: Any]])
                    #expect(policies.map { $0["name"] as? String } == ["ext-notes", "ext-people"])
                    #expect(policies.map { $0["state"] as? String } == ["draft", "active"])
                    #expect(policies.last?["legal_basis"] as? String == "contract")
                    #expect((policies.last?["rule"] as? String)?.contains("older than 5 years") == true)

                    // The values' JSON types.
                    let tableEntries = try #require(document["tables"] as? [[String: Any]])
                    let person = try #require((tableEntries[0]["rows"] as? [[String: Any]])?.first)
                    #expect(person["profile"] is [String: Any])
                    #expect(person["balance"] is NSNumber && !(person["balance"] is String))
                    #expect(person["active"] as? Bool == (id % 2 == 0))
                    #expect((person["joined"] as? String)?.hasSuffix("+00:00") == true)
                    #expect(person["tags"] as? String == "{t\(id),\"q\\\"uote\"}")
                    let photo = try #require(person["photo"] as? String)
                    #expect(Data(base64Encoded: photo)?.suffix(2) == Data([0x00, 0xff]))
                    #expect(person["Email"] as? String == "P\(id)@Example.org")
                }
                let verify = try await run(Harness.gallraPath, ["audit", "verify", "--database", conninfo])
                #expect(verify.status == 0, "\(verify.stdout)")

                // A policy over the subject table that no longer validates is named as unchecked; one over another
                // table is not.
                try """
                policy: ext-scores
                state: draft
                subject: { table: '"Ext"."Person"', key: id }
                expires: { older_than: 1 year, created: joined }
                data:
                  - { table: '"Ext"."Person"', anonymize: { score: null } }
                ---
                policy: ext-homes
                state: draft
                subject: { table: '"Ext".home', key: id }
                expires: { older_than: 1 year, created: built }
                data:
                  - { table: '"Ext".home', anonymize: { street: redact } }

                """.write(toFile: "\(directory)/more.yaml", atomically: true, encoding: .utf8)
                try await Harness.psql(
                    "ALTER TABLE \"Ext\".home ADD COLUMN built timestamptz", database: database)
                let more = try await run(
                    Harness.gallraPath, ["policy", "apply", "--database", conninfo, "\(directory)/more.yaml"])
                try #require(more.status == 0, "\(more.stdout)\(more.stderr)")
                try await Harness.psql(
                    "ALTER TABLE \"Ext\".\"Person\" DROP COLUMN score; ALTER TABLE \"Ext\".home DROP COLUMN built",
                    database: database)
                let path = "\(directory)/unchecked.json"
                let result = try await run(
                    Harness.gallraPath,
                    ["export", "--subject", "\"Ext\".\"Person\":1", "--out", path, "--database", conninfo])
                try #require(result.status == 0, "\(result.stderr)")
                try expectValidAgainstSchema(path)
                let unchecked = try #require(try Self.document(at: path)["unchecked_policies"] as? [[String: Any]])
                #expect(unchecked.map { $0["name"] as? String } == ["ext-scores"])
            }
        }
    }

    // MARK: - Oracles

    /// The rows of customer `id` per table, found by SQL written here from the demo's policies: the data points
    /// of inactive-customers and revoked-newsletter-consent.
    static func demoOracle(_ shop: DemoShop, customer id: Int) async throws -> [String: Set<String>] {
        let queries = [
            "shop.customer": "SELECT to_jsonb(t) FROM shop.customer t WHERE id = \(id)",
            "shop.wishlist_item": "SELECT to_jsonb(t) FROM shop.wishlist_item t WHERE customer_id = \(id)",
            "shop.cart": "SELECT to_jsonb(t) FROM shop.cart t WHERE customer_id = \(id)",
            "shop.cart_item":
                "SELECT to_jsonb(t) FROM shop.cart_item t WHERE cart_id IN (SELECT id FROM shop.cart WHERE customer_id = \(id))",
            "shop.newsletter_consent": "SELECT to_jsonb(t) FROM shop.newsletter_consent t WHERE customer_id = \(id)",
            "shop.newsletter_log": "SELECT to_jsonb(t) FROM shop.newsletter_log t WHERE customer_ref = \(id)",
            "shop.order": "SELECT to_jsonb(t) FROM shop.\"order\" t WHERE customer_id = \(id)",
            "shop.address": """
            SELECT to_jsonb(t) FROM shop.address t
            WHERE id IN (SELECT address_id FROM shop.customer WHERE id = \(id))
               OR id IN (SELECT shipping_address_id FROM shop."order" WHERE customer_id = \(id))
            """,
        ]
        var result: [String: Set<String>] = [:]
        for (table, query) in queries {
            result[table] = try await rows(query, database: shop.database)
        }
        return result
    }

    static let secondSchema = """
        CREATE SCHEMA "Ext";
        CREATE TABLE "Ext".home (id bigint PRIMARY KEY, street text NOT NULL);
        CREATE TABLE "Ext"."Person" (
            id bigint PRIMARY KEY, "Email" text NOT NULL, profile jsonb, settings json, photo bytea,
            balance numeric(12, 2), score double precision, active boolean NOT NULL, joined timestamptz NOT NULL,
            born date, tags text[], home_id bigint REFERENCES "Ext".home (id));
        CREATE INDEX ON "Ext"."Person" (joined);
        CREATE INDEX ON "Ext"."Person" (home_id);
        CREATE TABLE "Ext".event (
            person_id bigint NOT NULL REFERENCES "Ext"."Person" (id), at timestamptz NOT NULL, payload jsonb, raw bytea
        ) PARTITION BY RANGE (at);
        CREATE TABLE "Ext".event_2025 PARTITION OF "Ext".event FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE "Ext".event_2026 PARTITION OF "Ext".event FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        CREATE INDEX ON "Ext".event (person_id);
        CREATE TABLE "Ext".note (
            id bigint PRIMARY KEY, person_id bigint NOT NULL REFERENCES "Ext"."Person" (id) ON DELETE CASCADE, body text);
        CREATE INDEX ON "Ext".note (person_id);
        INSERT INTO "Ext".home SELECT i, 'Street ' || i FROM generate_series(1, 4) AS i;
        INSERT INTO "Ext"."Person"
        SELECT i, 'P' || i || '@Example.org', jsonb_build_object('n', i, 'list', jsonb_build_array('a', i, null)),
               CASE WHEN i % 2 = 1 THEN '{"x": [1, 2.50], "y": "é"}'::json END,
               decode(md5(i::text), 'hex') || '\\x00ff'::bytea, i * 10.25, i / 3.0, i % 2 = 0,
               timestamptz '2018-01-01 12:34:56.789+02' + i * interval '37 days 1 hour',
               CASE WHEN i % 5 <> 0 THEN date '1980-02-29' + i END, ARRAY['t' || i, 'q"uote'],
               CASE WHEN i % 6 <> 0 THEN i % 4 + 1 END
        FROM generate_series(1, 12) AS i;
        INSERT INTO "Ext".event
        SELECT p, timestamptz '2025-06-01 00:00+00' + e * interval '50 days', jsonb_build_object('e', e),
               CASE WHEN e % 2 = 0 THEN decode(repeat('ab', 40 + e), 'hex') END
        FROM generate_series(1, 12) AS p, generate_series(1, 6) AS e WHERE e <= p % 4 * 2;
        INSERT INTO "Ext".note SELECT p * 10 + n, p, 'Grüße ' || n || E'\\tend' FROM generate_series(1, 12) AS p,
            generate_series(1, 3) AS n WHERE n <= p % 3;
        ANALYZE;
        """

    static let secondPolicies = """
        policy: ext-people
        description: People five years after they joined.
        legal_basis: contract
        state: active
        subject: { table: '"Ext"."Person"', key: id }
        expires: { older_than: 5 years, created: joined }
        data:
          - { table: '"Ext".event', delete: true }
          - { table: '"Ext".note', delete: true }
          - { table: '"Ext".home', anonymize: { street: redact } }
          - { table: '"Ext"."Person"', delete: true }
        ---
        policy: ext-notes
        state: draft
        subject: { table: '"Ext"."Person"', key: id }
        expires: { older_than: 1 year, created: joined }
        data:
          - { table: '"Ext".note', anonymize: { body: redact } }

        """

    /// Per table of the second schema, its rows for `$ID`, each column written as the extract documents it.
    static let secondOracle = [
        "\"Ext\".\"Person\"": """
        SELECT json_build_object('id', id, 'Email', "Email", 'profile', profile, 'settings', settings,
            'photo', replace(encode(photo, 'base64'), E'\\n', ''), 'balance', balance, 'score', score,
            'active', active, 'joined', joined, 'born', born::text, 'tags', tags::text, 'home_id', home_id)
        FROM "Ext"."Person" WHERE id = $ID
        """,
        "\"Ext\".event": """
        SELECT json_build_object('person_id', person_id, 'at', at, 'payload', payload,
            'raw', replace(encode(raw, 'base64'), E'\\n', ''))
        FROM "Ext".event WHERE person_id = $ID
        """,
        "\"Ext\".note": """
        SELECT json_build_object('id', id, 'person_id', person_id, 'body', body) FROM "Ext".note WHERE person_id = $ID
        """,
        "\"Ext\".home": """
        SELECT json_build_object('id', id, 'street', street) FROM "Ext".home
        WHERE id = (SELECT home_id FROM "Ext"."Person" WHERE id = $ID)
        """,
    ]

    // MARK: - Helpers

    /// The rows a query returns (one JSON object per row), each in a canonical form (keys sorted), as the extract's
    /// rows are compared. Times are rendered in UTC, as the extract writes them.
    static func rows(_ query: String, database: String) async throws -> Set<String> {
        let output = try await Harness.psql("SET TimeZone = 'UTC'; \(query)", database: database)
        return try Set(output.split(separator: "\n").map { try canonical(String($0)) })
    }

    static func canonical(_ json: String) throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
        return String(
            decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    struct Table {
        var name: String
        var policies: [String]
        var rows: Set<String>
        var rowCount: Int
    }

    static func tables(_ document: [String: Any]) throws -> [Table] {
        let tables = try #require(document["tables"] as? [[String: Any]])
        return try tables.map { table in
            let rows = try #require(table["rows"] as? [[String: Any]])
            return Table(
                name: try #require(table["table"] as? String),
                policies: try #require(table["policies"] as? [String]),
                rows: try Set(
                    rows.map {
                        String(
                            decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]),
                            as: UTF8.self)
                    }),
                rowCount: try #require(table["row_count"] as? Int))
        }
    }

    static func document(at path: String) throws -> [String: Any] {
        try parse(String(contentsOfFile: path, encoding: .utf8))
    }

    static func parse(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }
}

/// Validates the JSON document at `path` against docs/export.schema.json with a JSON Schema validator (Python's
/// jsonschema, draft 2020-12, formats checked).
func expectValidAgainstSchema(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let schema = "\(try DemoShop.sourceRoot())/docs/export.schema.json"
    let script = """
        import json, sys, jsonschema
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        errors = sorted(validator.iter_errors(json.load(open(sys.argv[2]))), key=lambda e: list(e.path))
        for error in errors[:5]:
            print(list(error.path), error.message[:300])
        sys.exit(1 if errors else 0)
        """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = ["-c", script, schema, path]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(
        process.terminationStatus == 0, "\(path) is not valid against the schema: \(output)",
        sourceLocation: sourceLocation)
}
