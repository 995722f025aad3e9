import Foundation
import Testing

/// `gallra export --format html`: the page a person is sent, rendered by a real headless browser (Debian's
/// chromium) and checked on the DOM the browser built, against counts found by SQL written here.
@Suite("gallra export --format html")
struct ExportHTMLTests {
    /// A value that breaks a page that does not escape it.
    static let hostile = "<script>alert(1)</script></table></td><img src=x onerror=alert(2)> & \"q\" 'a'"

    /// For a sample of demo customers, the browser's DOM has one table per table of data with exactly the rows SQL
    /// counts, the title names the table and the date, and nothing runs or loads; a hostile value shows as text.
    @Test func demoShopPagesRenderWithTheSubjectsRows() async throws {
        let browser = try Chromium.require()
        try await DemoShop.with(customers: 60) { shop in
            let hostileID = try await shop.psql(
                "UPDATE shop.customer SET full_name = \(Self.literal(Self.hostile)) WHERE id = 2 RETURNING id")
            #expect(hostileID == "2")
            let sample = try await shop.psql(
                """
                (SELECT 2)
                UNION (SELECT customer_id FROM shop."order" WHERE customer_id IS NOT NULL
                       GROUP BY customer_id ORDER BY count(*) DESC, customer_id LIMIT 1)
                UNION (SELECT subject_key::bigint FROM gallra.consent_event ORDER BY id LIMIT 1)
                UNION (SELECT id FROM shop.customer c WHERE NOT EXISTS
                       (SELECT FROM shop."order" o WHERE o.customer_id = c.id) ORDER BY id LIMIT 1)
                """
            ).split(separator: "\n").compactMap { Int($0) }
            try #require(sample.count >= 3, "sample: \(sample)")
            for id in sample {
                let path = "\(shop.directory)/customer-\(id).html"
                let before = try await shop.psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
                let result = try await shop.gallra(
                    "export", "--subject", "shop.customer:\(id)", "--format", "html", "--out", path,
                    "--audit-key-file", shop.keyFile)
                try #require(result.status == 0, "export of \(id): \(result.stderr)")
                let after = try await shop.psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
                // The markup (every tag; text from the database has no unescaped <) and the style sheet load nothing.
                let html = try String(contentsOfFile: path, encoding: .utf8).lowercased()
                let markup = html.matches(of: try Regex("<[^>]*>")).map { String(html[$0.range]) }
                let style = html.firstMatch(of: try Regex("<style>(?s:.*?)</style>")).map { String(html[$0.range]) }
                #expect(markup.count > 100 && (style?.count ?? 0) > 500)
                for outside in ["http:", "https:", "src=", "url(", "@import", "<script", "//"] {
                    #expect(
                        !(markup + [style ?? ""]).contains { $0.contains(outside) },
                        "customer \(id): the page's markup holds \(outside)")
                }
                #expect(html.contains("&lt;script&gt;") == (id == 2))

                let page = try await browser.render(path, in: shop.directory)
                #expect(page.errors.isEmpty, "customer \(id): the browser reported \(page.errors)")
                #expect(
                    [before, after].map { "Register extract: shop.customer \(id), \($0)" }.contains(page.dom.title),
                    "\(page.dom.title)")
                #expect(page.dom.lang == "en")
                #expect(page.dom.charset == "utf-8")
                #expect(page.dom.tags["script", default: 0] == 0)
                for tag in ["img", "link", "iframe", "object", "embed", "video", "audio", "source", "base", "form"] {
                    #expect(page.dom.tags[tag, default: 0] == 0, "customer \(id): a <\(tag)> element")
                }
                #expect(page.dom.references.isEmpty, "customer \(id): \(page.dom.references)")
                let expected = try await Self.demoCounts(shop, customer: id)
                #expect(page.dom.sections == Self.demoTables, "customer \(id)")
                for table in Self.demoTables {
                    #expect(page.dom.rows[table, default: 0] == expected[table], "customer \(id), \(table)")
                }
                #expect(page.dom.headings.contains("Consent history"))
                #expect(page.dom.headings.contains("Processing history"))
                let events = try await shop.psql(
                    "SELECT count(*) FROM gallra.consent_event WHERE subject_key = '\(id)'")
                #expect(page.dom.rows["history:consent", default: 0] == Int(events), "customer \(id)")
                #expect(page.dom.rows["history:runs"] == nil)
                if id == 2 {
                    #expect(page.dom.cells.contains(Self.hostile), "the hostile name is not shown as text")
                }
            }

            // The processing history: a customer a live run erased, back with the same key, and its earlier extract.
            let due = try #require(
                Int(
                    try await shop.psql(
                        """
                        SELECT id FROM shop.customer
                        WHERE last_seen_at < \(DemoShop.asOfSQL) - interval '1 year' AND NOT legal_hold
                        ORDER BY id LIMIT 1
                        """)))
            let first = try await shop.gallra(
                "export", "--subject", "shop.customer:\(due)", "--format", "html", "--audit-key-file", shop.keyFile)
            #expect(first.status == 0, "\(first.stderr)")
            let live = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf, environment: shop.keyEnvironment)
            try #require(live.status == 0, "\(live.stderr)")
            try await shop.psql(
                """
                INSERT INTO shop.customer (id, email, full_name) OVERRIDING SYSTEM VALUE
                VALUES (\(due), 'back@example.org', 'Back Again')
                """)
            let back = "\(shop.directory)/customer-\(due)-back.html"
            let again = try await shop.gallra(
                "export", "--subject", "shop.customer:\(due)", "--format", "html", "--out", back, "--audit-key-file",
                shop.keyFile)
            try #require(again.status == 0, "\(again.stderr)")
            let history = try await browser.render(back, in: shop.directory)
            #expect(history.errors.isEmpty, "\(history.errors)")
            let records = try await shop.psql(
                "SELECT count(*) FROM gallra.audit_subject WHERE subject_digest = '\(shop.digest(customer: due))'")
            #expect(records == "1")
            #expect(history.dom.rows["history:runs"] == 1)
            #expect(history.dom.rows["history:extracts"] == 1)
            #expect(
                history.dom.cells.contains { $0.contains("deleted 1 row of shop.customer") }, "\(history.dom.cells)")

            // It prints: the introduction and policies, each table of rows from a new page, then the histories.
            let printed = "\(shop.directory)/customer-\(sample[0]).html"
            let pdf = try await browser.printToPDF(printed, in: shop.directory)
            #expect(pdf.errors.isEmpty, "\(pdf.errors)")
            #expect(pdf.bytes.starts(with: Array("%PDF-".utf8)))
            #expect(pdf.bytes.count > 10_000)
            let withRows = try await browser.render(printed, in: shop.directory).dom.rows.filter {
                !$0.key.hasPrefix("history:") && $0.value > 0
            }
            #expect(withRows.count >= 3)
            #expect(pdf.pages >= 1 + withRows.count + 1, "\(pdf.pages) pages")

            let formats = try await shop.psql("SELECT string_agg(DISTINCT format, ',') FROM gallra.audit_export")
            #expect(formats == "html")
        }
    }

    /// Typed values as the browser shows them: json laid out in <pre> (and still the same JSON), bytea by its size,
    /// timestamps with zone in UTC, NULL as an em dash; a page without the audit key says so.
    @Test func typedValuesOnASecondSchema() async throws {
        let browser = try Chromium.require()
        try await Harness.withDatabase { database, conninfo in
            try await Harness.withTemporaryDirectory { directory in
                try await Harness.psql(ExportCommandTests.secondSchema, database: database)
                let migrate = try await run(Harness.gallraPath, ["migrate", "--database", conninfo])
                try #require(migrate.status == 0, "\(migrate.stderr)")
                try ExportCommandTests.secondPolicies.write(
                    toFile: "\(directory)/ext.yaml", atomically: true, encoding: .utf8)
                let apply = try await run(
                    Harness.gallraPath, ["policy", "apply", "--database", conninfo, "\(directory)/ext.yaml"])
                try #require(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
                try await Harness.psql(
                    "UPDATE \"Ext\".note SET body = \(Self.literal(Self.hostile)) WHERE id = 51", database: database)

                let path = "\(directory)/person-5.html"
                let result = try await run(
                    Harness.gallraPath,
                    [
                        "export", "--subject", "\"Ext\".\"Person\":5", "--format", "html", "--out", path,
                        "--database", conninfo,
                    ])
                try #require(result.status == 0, "\(result.stderr)")
                #expect(result.stderr.contains("no audit key"))
                let page = try await browser.render(path, in: directory)
                #expect(page.errors.isEmpty, "\(page.errors)")
                #expect(page.dom.sections == ["\"Ext\".\"Person\"", "\"Ext\".note", "\"Ext\".event", "\"Ext\".home"])
                for (table, count) in [
                    ("\"Ext\".\"Person\"", "SELECT count(*) FROM \"Ext\".\"Person\" WHERE id = 5"),
                    ("\"Ext\".note", "SELECT count(*) FROM \"Ext\".note WHERE person_id = 5"),
                    ("\"Ext\".event", "SELECT count(*) FROM \"Ext\".event WHERE person_id = 5"),
                    (
                        "\"Ext\".home",
                        "SELECT count(*) FROM \"Ext\".home h JOIN \"Ext\".\"Person\" p ON p.home_id = h.id "
                            + "WHERE p.id = 5"
                    ),
                ] {
                    let expected = try await Harness.psql(count, database: database)
                    #expect(page.dom.rows[table, default: 0] == Int(expected), "\(table)")
                }
                #expect(page.dom.cells.contains(Self.hostile))

                // json and jsonb in <pre>, the same values as the database holds.
                let stored = try await Harness.psql(
                    "SELECT profile::text || E'\\n' || settings::text FROM \"Ext\".\"Person\" WHERE id = 5",
                    database: database)
                let shown = page.dom.preformatted
                #expect(shown.count >= 2, "\(shown)")
                for (text, expected) in zip(shown, stored.split(separator: "\n")) {
                    #expect(text.contains("\n"), "not laid out: \(text)")
                    #expect(try Self.sameJSON(text, String(expected)), "\(text) is not \(expected)")
                }
                // bytea by its size; a timestamp with zone in UTC.
                let size = try await Harness.psql(
                    "SELECT octet_length(photo) FROM \"Ext\".\"Person\" WHERE id = 5", database: database)
                #expect(page.dom.cells.contains { $0.hasSuffix("(\(size) bytes)") }, "\(page.dom.cells)")
                let joined = try await Harness.psql(
                    "SELECT to_char(joined AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM \"Ext\".\"Person\" "
                        + "WHERE id = 5",
                    database: database)
                #expect(page.dom.cells.contains { $0.hasPrefix(joined) && $0.hasSuffix(" UTC") }, "\(joined)")
                #expect(page.dom.paragraphs.contains { $0.contains("processing history could not be read") })

                // NULL: the birth date, and the raw bytes of the first event.
                #expect(page.dom.cells.filter { $0 == "—" }.count >= 2, "\(page.dom.cells)")
            }
        }
    }

    /// `--help` names the format.
    @Test func exportHelpNamesHTML() async throws {
        let help = try await gallra("export", "--help")
        #expect(help.status == 0)
        #expect(help.stdout.contains("html"))
        #expect(help.stdout.contains("--format html"))
    }

    /// The browser's log is read for what the page did: its console messages and the browser's errors count, the
    /// browser's own noise (D-Bus in a container, a message between its processes rejected as it closes) does not.
    @Test func browserLogKeepsThePagesErrorsAndLeavesItsOwnNoise() {
        let log = [
            "[1:1:1205/171046.1:ERROR:dbus/bus.cc:407] Failed to connect to the bus",
            "[2:2:1205/171046.5:ERROR:mojo/public/cpp/bindings/lib/interface_endpoint_client.cc:652] Message 1102119957 rejected by interface blink.mojom.FrameWidgetHost",
            "[3:3:1205/171046.6:INFO:CONSOLE(1)] \"Refused to load the image 'https://example.invalid/x.png'\", source: file:///tmp/a.html (1)",
            "[4:4:1205/171046.7:ERROR:components/viz/service/main/viz_main_impl.cc:186] Exiting GPU process",
            "[5:5:1205/171046.8:WARNING:sandbox/policy/linux/sandbox_linux.cc:415] InitializeSandbox() called with multiple threads",
        ].joined(separator: "\n")
        let errors = Chromium.errors(in: log)
        #expect(errors.count == 2, "\(errors)")
        #expect(errors.first?.contains(":CONSOLE(1)") == true)
        #expect(errors.last?.contains("viz_main_impl.cc") == true)
    }

    // MARK: - Oracles

    /// The demo's tables an extract of a customer holds, in the extract's order.
    static let demoTables = [
        "shop.customer", "shop.cart_item", "shop.wishlist_item", "shop.cart", "shop.newsletter_consent",
        "shop.newsletter_log", "shop.order", "shop.address",
    ]

    /// The number of rows of customer `id` per table, by SQL written here from the demo's policies.
    static func demoCounts(_ shop: DemoShop, customer id: Int) async throws -> [String: Int] {
        let queries = [
            "shop.customer": "SELECT count(*) FROM shop.customer WHERE id = \(id)",
            "shop.wishlist_item": "SELECT count(*) FROM shop.wishlist_item WHERE customer_id = \(id)",
            "shop.cart": "SELECT count(*) FROM shop.cart WHERE customer_id = \(id)",
            "shop.cart_item":
                "SELECT count(*) FROM shop.cart_item WHERE cart_id IN "
                + "(SELECT id FROM shop.cart WHERE customer_id = \(id))",
            "shop.newsletter_consent": "SELECT count(*) FROM shop.newsletter_consent WHERE customer_id = \(id)",
            "shop.newsletter_log": "SELECT count(*) FROM shop.newsletter_log WHERE customer_ref = \(id)",
            "shop.order": "SELECT count(*) FROM shop.\"order\" WHERE customer_id = \(id)",
            "shop.address": """
            SELECT count(*) FROM shop.address
            WHERE id IN (SELECT address_id FROM shop.customer WHERE id = \(id))
               OR id IN (SELECT shipping_address_id FROM shop."order" WHERE customer_id = \(id))
            """,
        ]
        var counts: [String: Int] = [:]
        for (table, query) in queries {
            counts[table] = Int(try await shop.psql(query))
        }
        return counts
    }

    static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }

    static func sameJSON(_ left: String, _ right: String) throws -> Bool {
        func parse(_ text: String) throws -> NSObject {
            try #require(
                try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) as? NSObject)
        }
        return try parse(left).isEqual(try parse(right))
    }
}

/// Debian's chromium, headless: renders a page and reports the DOM it built and the errors it logged.
struct Chromium {
    var path: String

    /// The browser, or a failure that says how to install it: a missing browser is never a silent skip.
    static func require() throws -> Chromium {
        for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        where FileManager.default.isExecutableFile(atPath: path) {
            return Chromium(path: path)
        }
        throw Missing()
    }

    /// The browser is not installed.
    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "chromium is not installed (/usr/bin/chromium): scripts/deps.sh installs it (Debian's chromium package)"
        }
    }

    struct Rendered {
        var dom: DOM
        var errors: [String]
    }

    struct Printed {
        var bytes: [UInt8]
        var pages: Int
        var errors: [String]
    }

    /// The page at `path` as the browser's DOM, with the page's console messages and the browser's unexpected
    /// errors.
    func render(_ path: String, in directory: String) async throws -> Rendered {
        let result = try await launch(path, in: directory, ["--dump-dom"])
        return Rendered(dom: try DOM(html: result.stdout, in: directory), errors: Self.errors(in: result.stderr))
    }

    /// The page at `path` printed to PDF (A4 or Letter, as the browser's locale says), with its number of pages.
    func printToPDF(_ path: String, in directory: String) async throws -> Printed {
        let pdf = "\(directory)/printed-\(UUID().uuidString).pdf"
        let result = try await launch(path, in: directory, ["--no-pdf-header-footer", "--print-to-pdf=\(pdf)"])
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: pdf)))
        let text = String(decoding: bytes, as: UTF8.self)
        let pages = text.matches(of: try Regex("/Type\\s*/Page[^s]")).count
        return Printed(bytes: bytes, pages: pages, errors: Self.errors(in: result.stderr))
    }

    private func launch(_ path: String, in directory: String, _ arguments: [String]) async throws -> CommandResult {
        let profile = "\(directory)/chromium-\(UUID().uuidString)"
        let result = try await run(
            self.path,
            [
                "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--user-data-dir=\(profile)",
                "--enable-logging=stderr", "--v=0",
            ] + arguments + ["file://\(path)"])
        try #require(result.status == 0, "chromium failed (\(result.status)): \(result.stderr)")
        return result
    }

    /// The lines of chromium's log that are the page's console messages, or errors not on the allow-list of the
    /// browser's own noise in a container (no D-Bus, no GPU) and of its own processes' messages to each other, one
    /// of which may be rejected as the headless browser closes the page it has printed (`interface_endpoint_client`:
    /// "Message ... rejected by interface blink.mojom.FrameWidgetHost"). What the page does, a script, a load, a
    /// refused resource, is logged as a console message.
    static func errors(in log: String) -> [String] {
        let allowed = [
            "dbus/bus.cc", "dbus/object_proxy.cc", "dbus/property.cc",
            "mojo/public/cpp/bindings/lib/interface_endpoint_client.cc",
        ]
        return log.split(separator: "\n").map(String.init).filter { line in
            if line.contains(":CONSOLE") { return true }
            guard line.contains(":ERROR:") || line.contains(":FATAL:") else { return false }
            return !allowed.contains { line.contains($0) }
        }
    }
}

/// What the tests read of a browser's DOM, parsed by Python's html.parser (a real HTML parser, not string matching).
struct DOM: Decodable {
    var title: String
    var lang: String
    var charset: String
    /// Elements by tag name.
    var tags: [String: Int]
    /// Attributes that could load something (src, href other than a fragment, srcset, style with url()).
    var references: [String]
    /// The data sections' headings (`#data` h3), in order.
    var sections: [String]
    /// Per data table (`data-table`) and per history (`history:` and its `data-history`), its body rows.
    var rows: [String: Int]
    /// h2 headings.
    var headings: [String]
    /// The text of every td.
    var cells: [String]
    /// The text of every pre.
    var preformatted: [String]
    /// The text of every p.
    var paragraphs: [String]

    init(html: String, in directory: String) throws {
        let input = "\(directory)/dom-\(UUID().uuidString).html"
        try html.write(toFile: input, atomically: true, encoding: .utf8)
        let script = """
            import json, sys
            from html.parser import HTMLParser
            class P(HTMLParser):
                def __init__(self):
                    super().__init__(convert_charrefs=True)
                    self.stack = []; self.out = dict(title="", lang="", charset="", tags={}, references=[],
                        sections=[], rows={}, headings=[], cells=[], preformatted=[], paragraphs=[])
                    self.texts = []; self.table = None; self.in_data = False
                def handle_starttag(self, tag, attrs):
                    a = dict(attrs); o = self.out
                    o["tags"][tag] = o["tags"].get(tag, 0) + 1
                    for k, v in attrs:
                        v = v or ""
                        if k in ("src", "srcset", "action", "poster", "data") \\
                                or (k == "href" and not v.startswith("#")) \\
                                or (k == "style" and "url(" in v):
                            o["references"].append(f"{tag} {k}={v}")
                    if tag == "html": o["lang"] = a.get("lang", "")
                    if tag == "meta" and "charset" in a: o["charset"] = a["charset"].lower()
                    if tag == "section" and a.get("id") == "data": self.in_data = True
                    if tag == "table" and ("data-table" in a or "data-history" in a):
                        self.table = a.get("data-table") or "history:" + a["data-history"]
                        o["rows"][self.table] = 0
                    if tag == "tr" and self.table is not None and "tbody" in self.stack:
                        o["rows"][self.table] += 1
                    if tag in ("meta", "br", "img", "link", "input", "hr", "base", "source", "embed"): return
                    self.stack.append(tag); self.texts.append([])
                def handle_endtag(self, tag):
                    if tag not in self.stack: return
                    while self.stack:
                        t = self.stack.pop(); text = "".join(self.texts.pop())
                        if self.texts: self.texts[-1].append(text)
                        o = self.out
                        if t == "title": o["title"] = text
                        elif t == "h2": o["headings"].append(text)
                        elif t == "h3" and self.in_data and self.stack.count("section") == 2:
                            o["sections"].append(text)
                        elif t == "td": o["cells"].append(text)
                        elif t == "pre": o["preformatted"].append(text)
                        elif t == "p": o["paragraphs"].append(text)
                        elif t == "table": self.table = None
                        elif t == "section" and self.in_data and "section" not in self.stack: self.in_data = False
                        if t == tag: break
                def handle_data(self, data):
                    if self.texts: self.texts[-1].append(data)
            p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read()); p.close()
            json.dump(p.out, sys.stdout)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, input]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "parsing the DOM failed: \(message)")
        self = try JSONDecoder().decode(DOM.self, from: data)
    }
}
