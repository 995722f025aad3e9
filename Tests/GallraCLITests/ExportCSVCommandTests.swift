import Foundation
import Testing

/// `gallra export --format csv`: the zip archive, read with Python's zipfile and csv modules and tested with
/// `unzip -t`, compared with what hand-written SQL finds of each subject.
@Suite("gallra export --format csv")
struct ExportCSVCommandTests {
    /// For a sample of demo customers, every CSV of the archive holds exactly the rows the policies' paths reach,
    /// as SQL written here finds and renders them; headers, the manifest's counts and a hostile value's quoting.
    @Test func demoShopArchivesHoldExactlyTheSubjectsRows() async throws {
        try await DemoShop.with(customers: 60) { shop in
            // A value with a comma, quotes and a line break; an empty text beside a NULL.
            let hostile = try #require(Int(try await shop.psql("SELECT min(id) FROM shop.customer")))
            try await shop.psql(
                """
                UPDATE shop.customer SET full_name = E'Ada, "the" Countess\\r\\nof Lovelace', phone = '',
                    birth_date = NULL
                WHERE id = \(hostile)
                """)
            let sample = try await shop.psql(
                """
                (SELECT id FROM shop.customer ORDER BY id LIMIT 2)
                UNION (SELECT customer_id FROM shop."order" WHERE customer_id IS NOT NULL
                       GROUP BY customer_id ORDER BY count(*) DESC, customer_id LIMIT 2)
                UNION (SELECT subject_key::bigint FROM gallra.consent_event ORDER BY id LIMIT 1)
                UNION (SELECT c.id FROM shop.customer c JOIN shop.customer d ON d.address_id = c.address_id
                       AND d.id <> c.id ORDER BY c.id LIMIT 1)
                """
            ).split(separator: "\n").compactMap { Int($0) }
            try #require(sample.count >= 4, "sample: \(sample)")
            for id in sample {
                let path = "\(shop.directory)/customer-\(id).zip"
                let result = try await shop.gallra(
                    "export", "--subject", "shop.customer:\(id)", "--format", "csv", "--out", path,
                    "--audit-key-file", shop.keyFile)
                try #require(result.status == 0, "export of \(id): \(result.stderr)")
                #expect(result.stdout.isEmpty)
                let archive = try await CSVArchive.read(path)
                let manifest = archive.manifest
                #expect(manifest["format_version"] as? Int == 1)
                #expect((manifest["subject"] as? [String: Any])?["key"] as? String == "\(id)")
                #expect(
                    (manifest["processing"] as? [String: Any])?["subject_digest"] as? String
                        == shop.digest(customer: id))
                let policies = try #require(manifest["policies"] as? [[String: Any]])
                #expect(
                    policies.map { $0["name"] as? String }
                        == ["erasure-requests", "inactive-customers", "revoked-newsletter-consent"])
                #expect(policies.allSatisfy { $0["rule"] is String && $0["standing"] is String })
                let consent = try #require(manifest["consent"] as? [[String: Any]])
                let events = try await shop.psql(
                    "SELECT count(*) FROM gallra.consent_event WHERE subject_key = '\(id)'")
                #expect(consent.count == Int(events))

                let tables = try archive.tables()
                #expect(tables.first?.table == "shop.customer")
                #expect(Set(tables.map(\.table)) == Set(Self.demoTables.keys))
                #expect(Set(archive.names) == Set(tables.map(\.file) + ["manifest.json", "README.txt"]))
                for table in tables {
                    #expect(table.file == table.table.replacingOccurrences(of: "\"", with: "") + ".csv")
                    let csv = try #require(archive.files[table.file])
                    let expected = try await Self.oracle(
                        table: table.table, where: try #require(Self.demoTables[table.table]), id: id,
                        database: shop.database)
                    #expect(csv.header == expected.columns, "\(table.file)")
                    #expect(table.columns == expected.columns, "\(table.file)")
                    #expect(Set(csv.rows) == expected.rows, "customer \(id), \(table.file)")
                    #expect(csv.rows.count == expected.rows.count, "customer \(id), \(table.file)")
                    #expect(table.rowCount == csv.rows.count, "\(table.file)")
                }
                if id == hostile {
                    let customer = try #require(archive.files["shop.customer.csv"])
                    // Quoted, its quotes doubled, the line break kept; "" an empty text, nothing a NULL.
                    #expect(
                        customer.raw.contains(",\"Ada, \"\"the\"\" Countess\r\nof Lovelace\",\"\",,"),
                        "\(customer.raw)")
                    #expect(customer.rows.first?[2] == "Ada, \"the\" Countess\r\nof Lovelace")
                }
            }
            #expect(sample.contains(hostile))
            let stored = try await shop.psql("SELECT count(*), bool_and(format = 'csv') FROM gallra.audit_export")
            #expect(stored == "\(sample.count)|t")
            let lookup = try await shop.gallra(
                "audit", "lookup", "--subject", "shop.customer:\(sample[0])", "--audit-key-file", shop.keyFile,
                "--format", "json")
            #expect((try jsonObject(lookup)["exports"] as? [[String: Any]])?.first?["format"] as? String == "csv")
        }
    }

    /// The second schema's types, quoted mixed-case names mapped to file names, NULL against an empty text.
    @Test func typedValuesAndQuotedNamesOnASecondSchema() async throws {
        try await Harness.withDatabase { database, conninfo in
            try await Harness.withTemporaryDirectory { directory in
                try await Harness.psql(ExportCommandTests.secondSchema, database: database)
                try await Harness.psql(
                    """
                    UPDATE "Ext".note SET body = '' WHERE id = 21;
                    UPDATE "Ext".note SET body = NULL WHERE id = 22;
                    UPDATE "Ext"."Person" SET "Email" = E'x,"y"\\nz' WHERE id = 5;
                    UPDATE "Ext"."Person" SET settings = '"a,\\"q\\""' WHERE id = 6;
                    """, database: database)
                let migrate = try await run(Harness.gallraPath, ["migrate", "--database", conninfo])
                try #require(migrate.status == 0, "\(migrate.stderr)")
                try ExportCommandTests.secondPolicies.write(
                    toFile: "\(directory)/ext.yaml", atomically: true, encoding: .utf8)
                let apply = try await run(
                    Harness.gallraPath, ["policy", "apply", "--database", conninfo, "\(directory)/ext.yaml"])
                try #require(apply.status == 0, "\(apply.stdout)\(apply.stderr)")

                for id in [1, 2, 5, 6, 11] {
                    let path = "\(directory)/person-\(id).zip"
                    let result = try await run(
                        Harness.gallraPath,
                        [
                            "export", "--subject", "\"Ext\".\"Person\":\(id)", "--format", "csv", "--out", path,
                            "--database", conninfo,
                        ])
                    try #require(result.status == 0, "export of \(id): \(result.stderr)")
                    let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
                    #expect(mode == 0o600)
                    let archive = try await CSVArchive.read(path)
                    let tables = try archive.tables()
                    #expect(
                        tables.map(\.table) == ["\"Ext\".\"Person\"", "\"Ext\".note", "\"Ext\".event", "\"Ext\".home"])
                    #expect(tables.map(\.file) == ["Ext.Person.csv", "Ext.note.csv", "Ext.event.csv", "Ext.home.csv"])
                    #expect(tables.first { $0.file == "Ext.note.csv" }?.policies == ["ext-notes", "ext-people"])
                    #expect(
                        (archive.manifest["processing"] as? [String: Any])?["available"] as? Bool == false)
                    for table in tables {
                        let csv = try #require(archive.files[table.file])
                        let expected = try await Self.oracle(
                            table: table.table, where: try #require(Self.secondTables[table.table]), id: id,
                            database: database)
                        #expect(csv.header == expected.columns, "\(table.file)")
                        #expect(Set(csv.rows) == expected.rows, "person \(id), \(table.file)")
                        #expect(table.rowCount == csv.rows.count, "\(table.file)")
                    }
                    // The values a person reads: a base64 photo ending in 00 ff, json text, true/false, RFC 3339.
                    let person = try #require(archive.files["Ext.Person.csv"])
                    let row = try #require(person.rows.first)
                    let field = Dictionary(uniqueKeysWithValues: zip(person.header, row))
                    #expect(Data(base64Encoded: field["photo"] ?? "")?.suffix(2) == Data([0x00, 0xff]))
                    #expect(field["profile"]?.hasPrefix("{\"n\": \(id), ") == true, "\(field)")
                    #expect(field["active"] == (id % 2 == 0 ? "true" : "false"))
                    #expect(field["joined"]?.hasSuffix("+00:00") == true && field["joined"]?.contains("T") == true)
                    if id == 2 {
                        let notes = try #require(archive.files["Ext.note.csv"]).raw
                        #expect(notes == "id,person_id,body\r\n21,2,\"\"\r\n22,2,\r\n", "\(notes)")
                    }
                    if id == 6 {
                        // A json string is its JSON text, quotes and escapes kept.
                        #expect(field["settings"] == "\"a,\\\"q\\\"\"", "\(field)")
                    }
                    if id == 5 {
                        #expect(person.raw.contains(",\"x,\"\"y\"\"\nz\","), "\(person.raw)")
                    }
                }
            }
        }
    }

    /// A zip is never written to stdout (64); a failed export leaves no archive and no temporary file; an existing
    /// file is replaced only with --force.
    @Test func archivesNeedAFile() async throws {
        try await DemoShop.with(customers: 5) { shop in
            let stdout = try await shop.gallra("export", "--subject", "shop.customer:1", "--format", "csv")
            #expect(stdout.status == 64)
            #expect(stdout.stderr.contains("--format csv writes a zip archive"), "\(stdout.stderr)")
            #expect(stdout.stdout.isEmpty)
            let failed = try await shop.gallra(
                "export", "--subject", "shop.customer:99999", "--format", "csv", "--out", "\(shop.directory)/x.zip")
            #expect(failed.status == 66)
            let path = "\(shop.directory)/extract.zip"
            try "keep me".write(toFile: path, atomically: true, encoding: .utf8)
            let refused = try await shop.gallra(
                "export", "--subject", "shop.customer:1", "--format", "csv", "--out", path)
            #expect(refused.status == 64)
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me")
            let forced = try await shop.gallra(
                "export", "--subject", "shop.customer:1", "--format", "csv", "--out", path, "--force")
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(try await CSVArchive.read(path).names.contains("shop.customer.csv"))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: shop.directory)
                .filter { $0.contains(".gallra-") || $0 == "x.zip" }
            #expect(leftovers.isEmpty, "\(leftovers)")
            let help = try await shop.gallra("export", "--help")
            #expect(help.stdout.contains("customer-1234.zip"))
            #expect(help.stdout.contains("--format csv writes a zip archive"))
        }
    }

    // MARK: - Oracles

    /// The demo customer's rows per table (alias `r`, `$ID` the customer): the data points of inactive-customers
    /// and revoked-newsletter-consent.
    static let demoTables = [
        "shop.customer": "r.id = $ID",
        "shop.wishlist_item": "r.customer_id = $ID",
        "shop.cart": "r.customer_id = $ID",
        "shop.cart_item": "r.cart_id IN (SELECT id FROM shop.cart WHERE customer_id = $ID)",
        "shop.newsletter_consent": "r.customer_id = $ID",
        "shop.newsletter_log": "r.customer_ref = $ID",
        "shop.order": "r.customer_id = $ID",
        "shop.address": """
        r.id IN (SELECT address_id FROM shop.customer WHERE id = $ID)
        OR r.id IN (SELECT shipping_address_id FROM shop."order" WHERE customer_id = $ID)
        """,
    ]

    static let secondTables = [
        "\"Ext\".\"Person\"": "r.id = $ID",
        "\"Ext\".event": "r.person_id = $ID",
        "\"Ext\".note": "r.person_id = $ID",
        "\"Ext\".home": "r.id = (SELECT home_id FROM \"Ext\".\"Person\" WHERE id = $ID)",
    ]

    /// The columns of `table` (from the catalog) and its rows matching `where`, each value rendered here as the
    /// CSV documents it (NULL read back as an empty field, as a CSV reader does).
    static func oracle(
        table: String, where condition: String, id: Int, database: String
    ) async throws -> (columns: [String], rows: Set<[String]>) {
        let columns = try await Harness.psql(
            """
            SELECT a.attname, coalesce(b.typname, t.typname) FROM pg_attribute a
            JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
            WHERE a.attrelid = '\(table)'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
            """, database: database
        ).split(separator: "\n").map { $0.split(separator: "|").map(String.init) }
        let values = columns.map { column -> String in
            let value = "r.\"\(column[0])\""
            switch column[1] {
            case "bool": return "CASE WHEN \(value) THEN 'true' WHEN NOT \(value) THEN 'false' END"
            case "timestamptz":
                return "regexp_replace(to_char(\(value) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
                    + "'\\.?0+$', '') || '+00:00'"
            case "bytea": return "translate(encode(\(value), 'base64'), E'\\n', '')"
            default: return "\(value)::text"
            }
        }
        let from = try await Harness.psql("SELECT '\(table)'::regclass", database: database)
        let output = try await Harness.psql(
            """
            SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD';
            SELECT json_build_array(\(values.joined(separator: ", "))) FROM \(from) AS r
            WHERE \(condition.replacingOccurrences(of: "$ID", with: String(id)))
            """, database: database)
        let rows = try output.split(separator: "\n").map { line in
            let array = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Any])
            return array.map { $0 as? String ?? "" }
        }
        return (columns.map { $0[0] }, Set(rows))
    }
}

/// A CSV extract as Python's zipfile and csv modules read it, after `unzip -t` tested it.
struct CSVArchive {
    var names: [String]
    var manifest: [String: Any]
    var files: [String: File]

    struct File {
        var header: [String]
        var rows: [[String]]
        /// The text as written.
        var raw: String
    }

    struct Table {
        var file: String
        var table: String
        var policies: [String]
        var columns: [String]
        var rowCount: Int
    }

    func tables() throws -> [Table] {
        let tables = try #require(manifest["tables"] as? [[String: Any]])
        return try tables.map { table in
            Table(
                file: try #require(table["file"] as? String), table: try #require(table["table"] as? String),
                policies: try #require(table["policies"] as? [String]),
                columns: try #require(table["columns"] as? [[String: Any]]).compactMap { $0["name"] as? String },
                rowCount: try #require(table["row_count"] as? Int))
        }
    }

    static let script = """
        import csv, io, json, sys, zipfile
        result = {"files": {}}
        with zipfile.ZipFile(sys.argv[1]) as archive:
            result["bad"] = archive.testzip()
            result["names"] = archive.namelist()
            result["manifest"] = json.loads(archive.read("manifest.json").decode("utf-8"))
            result["readme"] = archive.read("README.txt").decode("utf-8")
            for name in archive.namelist():
                if not name.endswith(".csv"):
                    continue
                raw = archive.read(name)
                text = raw.decode("utf-8")
                # Every record ends with CR LF: a LF outside quotes has a CR before it.
                quoted, previous, bare = False, "", 0
                for character in text:
                    if character == '"':
                        quoted = not quoted
                    elif character == "\\n" and not quoted and previous != "\\r":
                        bare += 1
                    previous = character
                records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
                result["files"][name] = {
                    "bom": raw.startswith(b"\\xef\\xbb\\xbf"), "crlf": text.endswith("\\r\\n") and bare == 0,
                    "header": records[0], "rows": records[1:], "raw": text}
        print(json.dumps(result))
        """

    static func read(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> CSVArchive {
        let test = try await run("/usr/bin/unzip", ["-t", path])
        #expect(test.status == 0, "unzip -t \(path): \(test.stdout)\(test.stderr)", sourceLocation: sourceLocation)
        let python = try await run("/usr/bin/python3", ["-c", script, path])
        try #require(python.status == 0, "reading \(path): \(python.stderr)", sourceLocation: sourceLocation)
        let result = try #require(
            try JSONSerialization.jsonObject(with: Data(python.stdout.utf8)) as? [String: Any],
            sourceLocation: sourceLocation)
        #expect(result["bad"] is NSNull, "zipfile.testzip: \(result["bad"] ?? "")", sourceLocation: sourceLocation)
        #expect(
            (result["readme"] as? String)?.contains("RFC 4180") == true, sourceLocation: sourceLocation)
        var files: [String: File] = [:]
        for (name, value) in try #require(result["files"] as? [String: [String: Any]], sourceLocation: sourceLocation) {
            #expect(value["bom"] as? Bool == false, "\(name) starts with a BOM", sourceLocation: sourceLocation)
            #expect(value["crlf"] as? Bool == true, "\(name): a line not ended by CRLF", sourceLocation: sourceLocation)
            files[name] = File(
                header: try #require(value["header"] as? [String], sourceLocation: sourceLocation),
                rows: try #require(value["rows"] as? [[String]], sourceLocation: sourceLocation),
                raw: try #require(value["raw"] as? String, sourceLocation: sourceLocation))
        }
        return CSVArchive(
            names: try #require(result["names"] as? [String], sourceLocation: sourceLocation),
            manifest: try #require(result["manifest"] as? [String: Any], sourceLocation: sourceLocation), files: files)
    }
}
