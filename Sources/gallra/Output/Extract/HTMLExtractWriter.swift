import GallraCore
import GallraEngine
import GallraPolicy

/// A register extract as one self-contained HTML page for the person it is about, written as it is read: the page's
/// head and the policies first, each table's rows as they come, then the consent and processing history.
///
/// The page has no script and loads nothing (its Content-Security-Policy forbids both); its CSS is inline and prints
/// each table of rows from a new page with its header row repeated. Every text from the database is escaped.
final class HTMLExtractWriter: ExtractWriter, @unchecked Sendable {
    // @unchecked: the engine drives a writer from one task at a time, and nothing else touches it.

    /// A bytea value longer than this (in base64 characters) is shown by its start and end.
    static let base64Shown = 48

    private let file: ExtractFile
    private var header: ExtractHeader?
    private var table: ExtractTable?
    private var tables = 0
    private var rowsInTable = 0

    init(file: ExtractFile) {
        self.file = file
    }

    func begin(_ header: ExtractHeader) throws {
        self.header = header
        let generated = TimeText.readable(unixMicroseconds: header.takenAtMicroseconds)
        let title = "Register extract: \(header.subjectTable) \(header.key), \(generated.prefix(10))"
        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="generator" content="\(escape(BuildInfo.versionLine))">
            <title>\(escape(title))</title>
            <style>\(Self.style)</style>
            </head>
            <body>
            <header>
            <h1>\(escape(title))</h1>
            <p class="meta">Generated \(escape(generated)) from the database \(code(header.database)) by \
            \(escape(BuildInfo.versionLine)).</p>
            </header>
            <section id="about">
            <h2>What this document is</h2>
            <p>This is a copy of the data held about one person (a <em>subject</em>): the row of \
            \(code(header.subjectTable)) whose \(code(header.keyColumn)) is \(code(header.key)), and every row of \
            the other tables that the retention policies below say belongs to it. It was read in one consistent \
            snapshot of the database at \(escape(generated)).</p>
            <p>For each policy it says why the data is held (its purpose and legal basis), how long it is kept, and \
            where this subject stands today. The data follows, one table per part, then the subject's consent \
            history and what has been done with the data so far (deletions, anonymizations, earlier copies like \
            this one).</p>
            <p>How values are shown: times are in UTC; <span class="null">—</span> means no value; structured \
            (JSON) values are laid out over several lines; binary values are shown in base64, shortened, with their \
            size in bytes.</p>
            </section>
            <section id="policies">
            <h2>Policies</h2>

            """
        if header.policies.isEmpty {
            page += "<p>No policy covers this table.</p>\n"
        }
        for policy in header.policies {
            page += policySection(policy)
        }
        if !header.uncheckedPolicies.isEmpty {
            page += "<div class=\"warning\"><p>These policies could not be checked against the database, so the "
            page += "data they cover is not in this document:</p><ul>\n"
            for unchecked in header.uncheckedPolicies {
                page += "<li>\(code(unchecked.name)): \(escape(unchecked.reason))</li>\n"
            }
            page += "</ul></div>\n"
        }
        page += "</section>\n<section id=\"data\">\n<h2>The data</h2>\n"
        try file.write(page)
    }

    func beginTable(_ table: ExtractTable) throws {
        self.table = table
        tables += 1
        rowsInTable = 0
        let policies = table.policies.map(code).joined(separator: ", ")
        try file.write(
            """
            <section class="table" id="table-\(tables)">
            <h3>\(escape(table.name))</h3>
            <p class="meta">Covered by \(table.policies.count == 1 ? "the policy" : "the policies") \(policies).</p>

            """)
    }

    func rows(_ rows: [String]) throws {
        guard let table else { return }
        for row in rows {
            var text = ""
            if rowsInTable == 0 {
                text += "<table class=\"rows\" data-table=\"\(escape(table.name))\">\n<thead><tr>"
                for column in table.columns {
                    text +=
                        "<th scope=\"col\">\(escape(column.name))"
                        + "<span class=\"type\">\(escape(column.type))</span></th>"
                }
                text += "</tr></thead>\n<tbody>\n"
            }
            let values: JSONValue
            do throws(JSONValue.SyntaxError) {
                values = try JSONValue(parsing: row)
            } catch {
                throw CommandFailure(
                    .software,
                    "a row of \(table.name) cannot be written as HTML (\(error.message)); --format json writes it.")
            }
            text += "<tr>"
            for column in table.columns {
                text += cell(values[column.name] ?? .null, baseType: column.baseType)
            }
            text += "</tr>\n"
            try file.write(text)
            rowsInTable += 1
        }
    }

    func endTable(rowCount: Int) throws {
        if rowsInTable == 0 {
            try file.write("<p class=\"none\">No rows.</p>\n</section>\n")
        } else {
            try file.write(
                "</tbody>\n</table>\n<p class=\"count\">\(rowCount) \(rowCount == 1 ? "row" : "rows").</p>\n"
                    + "</section>\n"
            )
        }
        table = nil
    }

    func finish() throws {
        guard let header else { return }
        var page = "</section>\n<section id=\"consent\">\n<h2>Consent history</h2>\n"
        if header.consent.isEmpty {
            page += "<p>No consent was recorded for this subject.</p>\n"
        } else {
            page += "<table class=\"history\" data-history=\"consent\">\n<thead><tr><th scope=\"col\">When</th>"
            page += "<th scope=\"col\">Event</th>"
            page += "<th scope=\"col\">Policy</th><th scope=\"col\">Recorded by</th><th scope=\"col\">Source</th>"
            page += "<th scope=\"col\">Evidence</th></tr></thead>\n<tbody>\n"
            for event in header.consent {
                page += "<tr><td>\(escape(TimeText.readable(unixMicroseconds: event.recordedAtMicroseconds)))</td>"
                page += "<td>\(event.event == .granted ? "Consent given" : "Consent withdrawn")</td>"
                page += "<td>\(code(event.policy)) version \(event.policyVersion)</td>"
                page += "<td>\(escape(event.recordedBy))</td><td>\(optional(event.source))</td>"
                page += "<td>\(optional(event.evidence))</td></tr>\n"
            }
            page += "</tbody>\n</table>\n"
        }
        page += "</section>\n<section id=\"processing\">\n<h2>Processing history</h2>\n"
        switch header.history {
        case .found(_, let records, let exports):
            if records.isEmpty {
                page += "<p>No policy has deleted or anonymized data of this subject.</p>\n"
            } else {
                page += "<table class=\"history\" data-history=\"runs\">\n<thead><tr><th scope=\"col\">When</th>"
                page += "<th scope=\"col\">Policy</th><th scope=\"col\">What was done</th><th scope=\"col\">Run</th>"
                page += "</tr></thead>\n<tbody>\n"
                for record in records {
                    page += "<tr><td>\(escape(TimeText.readable(unixMicroseconds: record.createdAtMicroseconds)))</td>"
                    page += "<td>\(code(record.policy)) version \(record.policyVersion)</td><td><ul>"
                    for count in record.counts {
                        page += "<li>\(Self.words(count.action)) \(count.rows) \(count.rows == 1 ? "row" : "rows") "
                        page += "of \(code(count.table))</li>"
                    }
                    page += "</ul></td><td>\(code(record.run))</td></tr>\n"
                }
                page += "</tbody>\n</table>\n"
            }
            page += "<h3>Earlier copies of this data</h3>\n"
            if exports.isEmpty {
                page += "<p>None: this is the first.</p>\n"
            } else {
                page += "<table class=\"history\" data-history=\"extracts\">\n<thead><tr><th scope=\"col\">When</th>"
                page += "<th scope=\"col\">Format</th><th scope=\"col\">Made by</th></tr></thead>\n<tbody>\n"
                for export in exports {
                    page += "<tr><td>\(escape(TimeText.readable(unixMicroseconds: export.createdAtMicroseconds)))</td>"
                    page += "<td>\(escape(export.format))</td><td>\(escape(export.osUser)) (database role "
                    page += "\(escape(export.databaseRole)))</td></tr>\n"
                }
                page += "</tbody>\n</table>\n"
            }
        case .noAuditKey:
            page += "<p class=\"warning\">The processing history could not be read: the audit trail names people "
            page += "only by a code made with a secret key, and this document was made without that key.</p>\n"
        }
        page += "</section>\n</body>\n</html>\n"
        try file.write(page)
    }

    // MARK: - Parts

    private func policySection(_ policy: ExtractPolicy) -> String {
        var text = "<section class=\"policy\">\n<h3>\(escape(policy.name))"
        text += " <span class=\"version\">version \(policy.version)\(policy.state == .draft ? ", draft" : "")</span>"
        text += "</h3>\n"
        if let description = policy.description { text += "<p>\(escape(description))</p>\n" }
        text += "<dl>\n"
        text += "<dt>Purpose</dt><dd>\(optional(policy.purpose, none: "not stated"))</dd>\n"
        let basis = policy.legalBasis.map { "\(Self.words($0)) (GDPR \($0.article))" }
        text += "<dt>Legal basis</dt><dd>\(optional(basis, none: "not stated"))</dd>\n"
        text += "<dt>Kept until</dt><dd>\(escape(Self.withoutIndex(policy.rule)))</dd>\n"
        text += "<dt>Tables</dt><dd>\(policy.tables.map(code).joined(separator: ", "))</dd>\n"
        text += "<dt>This subject today</dt><dd>\(escape(Self.words(policy.standing, state: policy.state)))"
        if let reason = Self.reason(policy.why) { text += " \(escape(reason))" }
        text += "</dd>\n"
        text += "</dl>\n</section>\n"
        return text
    }

    /// One value as a table cell, by the column's base type.
    private func cell(_ value: JSONValue, baseType: String) -> String {
        switch value {
        case .null:
            return "<td class=\"null\">—</td>"
        case .bool(let flag):
            return "<td>\(flag ? "yes" : "no")</td>"
        case .number(let text):
            return "<td class=\"number\">\(escape(text))</td>"
        case .array, .object:
            return "<td><pre>\(escape(Self.pretty(value)))</pre></td>"
        case .string(let text):
            switch baseType {
            case "json", "jsonb":
                return "<td><pre>\(escape(Self.pretty(value)))</pre></td>"
            case "bytea":
                return "<td class=\"binary\">\(bytes(base64: text))</td>"
            case "timestamptz":
                return "<td class=\"time\">\(escape(Self.readableTime(text)))</td>"
            default:
                return "<td>\(escape(text))</td>"
            }
        }
    }

    /// The rule without the index `gallra plan` names after it, which says nothing to the person.
    static func withoutIndex(_ rule: String) -> String {
        guard rule.hasSuffix(")"), let start = rule.ranges(of: " (index ").last else { return rule }
        return String(rule[..<start.lowerBound])
    }

    /// Base64, shortened to its start and end when long, with the size it encodes.
    private func bytes(base64 text: String) -> String {
        let padding = text.reversed().prefix { $0 == "=" }.count
        let size = text.count / 4 * 3 - padding
        let shown =
            text.count > Self.base64Shown ? "\(text.prefix(Self.base64Shown - 12))…\(text.suffix(8))" : text
        return "<code>\(escape(shown))</code> <span class=\"size\">(\(size) \(size == 1 ? "byte" : "bytes"))</span>"
    }

    /// `2026-03-01T14:05:09.5+00:00` (the extract's UTC) as `2026-03-01 14:05:09.5 UTC`; anything else unchanged.
    static func readableTime(_ text: String) -> String {
        guard text.hasSuffix("+00:00"), text.count > 16 else { return text }
        return text.dropLast(6).replacing("T", with: " ") + " UTC"
    }

    /// A JSON value over several lines, indented by two spaces, numbers as written, object keys sorted.
    static func pretty(_ value: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case .array(let items) where !items.isEmpty:
            return "[\n" + items.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let members) where !members.isEmpty:
            let lines = members.keys.sorted().map { key in
                inner + JSONValue.string(key).canonicalText + ": " + pretty(members[key]!, indent: inner)
            }
            return "{\n" + lines.joined(separator: ",\n") + "\n\(indent)}"
        default:
            return value.canonicalText
        }
    }

    static func words(_ action: AuditCount.Action) -> String {
        switch action {
        case .deleted: "deleted"
        case .anonymized: "anonymized"
        case .retained: "kept (still used elsewhere)"
        }
    }

    static func words(_ basis: LegalBasis) -> String {
        switch basis {
        case .consent: "your consent"
        case .contract: "a contract with you"
        case .legalObligation: "a legal obligation"
        case .vitalInterests: "vital interests"
        case .publicTask: "a task in the public interest"
        case .legitimateInterests: "legitimate interests"
        }
    }

    /// Why, in a sentence: when the data expires, which exemption keeps it, the consent it waits on.
    static func reason(_ why: PolicyStanding) -> String? {
        let date = why.expiresAt.map { String($0.prefix(10)) }
        return switch why.verdict {
        case .notYet: date.map { "It is kept until \($0)." }
        case .exempt:
            "Kept by: " + why.exemptions.map(\.condition).joined(separator: "; ") + "."
        case .noDate: "The date the rule counts from is not set, so the time has not started."
        case .consentInForce: "It is kept while your consent is in force."
        case .held: "It is kept while a legal hold is in force."
        case .notRequested: "It is erased when you ask for it."
        case .due, .processed, .noSubject, .disabled: nil
        }
    }

    static func words(_ standing: ExtractPolicy.Standing, state: Policy.State) -> String {
        let draft = state == .draft ? " The policy is a draft: nothing is done under it yet." : ""
        return switch standing {
        case .due: "The time to keep this data has passed: it is due to be deleted or anonymized." + draft
        case .exempt: "The time to keep this data has passed, but an exemption (such as a legal hold) keeps it." + draft
        case .held: "The time to keep this data has passed, but a legal hold keeps it for now." + draft
        case .processed: "This data has already been deleted or anonymized under this policy." + draft
        case .notDue: "The time to keep this data has not passed yet." + draft
        }
    }

    // MARK: - Escaping

    private func escape(_ text: some StringProtocol) -> String {
        Self.escape(text)
    }

    /// Text as HTML character data or a quoted attribute value.
    static func escape(_ text: some StringProtocol) -> String {
        // & < > " '
        guard text.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else {
            return String(text)
        }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    private func code(_ text: String) -> String {
        "<code>\(escape(text))</code>"
    }

    private func optional(_ text: String?, none: String = "") -> String {
        guard let text else { return none.isEmpty ? "<span class=\"null\">—</span>" : "<em>\(none)</em>" }
        return escape(text)
    }

    static let style = """
        :root { color-scheme: light; }
        body { font: 11pt/1.45 system-ui, "DejaVu Sans", sans-serif; color: #1b1b1b; max-width: 75rem;
          margin: 1.5rem auto; padding: 0 1rem; }
        h1 { font-size: 1.5em; margin-bottom: .2em; }
        h2 { font-size: 1.25em; border-bottom: 1px solid #999; padding-bottom: .15em; margin-top: 1.6em; }
        h3 { font-size: 1.05em; margin: 1.2em 0 .3em; }
        .meta, .count, .version, .type, .size { color: #555; }
        .version { font-weight: normal; font-size: .9em; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; margin: .3em 0; }
        dt { font-weight: bold; } dd { margin: 0; }
        table { border-collapse: collapse; width: 100%; font-size: .9em; }
        th, td { border: 1px solid #bbb; padding: .2em .4em; text-align: left; vertical-align: top;
          overflow-wrap: anywhere; white-space: pre-wrap; }
        th { background: #eee; white-space: normal; overflow-wrap: normal; }
        th .type { display: block; font-weight: normal; font-size: .8em; }
        td.number { text-align: right; font-variant-numeric: tabular-nums; }
        td.null, span.null { color: #777; }
        td ul { margin: 0; padding-left: 1.1em; }
        pre { margin: 0; white-space: pre-wrap; font-size: .9em; }
        code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
        .warning { border-left: 4px solid #b50; padding: .2em .8em; background: #fff4ec; }
        thead { display: table-header-group; }
        tr { break-inside: avoid; }
        @page { margin: 14mm 12mm; }
        @media print {
          body { margin: 0; max-width: none; font-size: 9pt; }
          #data .table:has(table), #consent { break-before: page; }
          h2, h3 { break-after: avoid; }
          th { background: #eee; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
        }
        """
}
