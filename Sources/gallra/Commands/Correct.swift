import ArgumentParser
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct Correct: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Correct values in one subject's data, in one transaction, recorded in the audit trail.",
        discussion: """
            For a person's request to have their data corrected (GDPR Art. 16). Each --set TABLE.COLUMN=VALUE \
            names a column of the subject table or of a data point of an active or draft policy over it (the \
            table schema-qualified, or as the policies name it); the rows changed are the subject's rows of that \
            table, found along the policies' paths as a run or gallra export finds them. The value is given as \
            text and cast by the server to the column's type, so a value of the wrong type is the server's error \
            and changes nothing.

            correct first shows, per table, each row that changes (by its primary key), and each column's old \
            and new value; rows that already hold the new values are left alone. It then asks for confirmation \
            on the terminal; --yes answers for it (needed when stdin is not a terminal). All changes are made in \
            one transaction, with one event of kind correction in the audit trail (gallra.audit_event): the \
            tables, the columns and the number of rows changed, never the values. With the audit key (as for \
            gallra export) the event holds the subject's digest; without one it holds none.

            Not corrected: a column of a row's key or of the link between a row and the subject (a correction \
            never moves rows to another subject), a generated column, a table the policies do not map to the \
            subject, and a row the subject points to (an address) that something else points to as well.

            Examples:
              gallra correct --subject shop.customer:1234 --set shop.customer.full_name='Ada King'
              gallra correct --subject shop.customer:email=ada@example.org \\
                  --set shop.customer.phone=+46701234567 --set shop.order.phone=+46701234567 --yes

            Exit status: 0 changed, nothing to change, or not confirmed; 64 a wrong option, or no terminal to \
            confirm on and no --yes; 65 a table or column that may not be corrected, a shared row, or a value \
            the server refuses (nothing changed); 66 no subject has that key; 75 the rows changed since they \
            were shown, or another session holds them (nothing changed; run it again); 78 no schema or a wrong \
            setting.
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var subject: SubjectOption

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp(
            "A column and its correct value: TABLE.COLUMN=VALUE (repeatable).", valueName: "table.column=value"))
    var settings: [String] = []

    @Flag(help: "Make the changes without asking for confirmation.")
    var yes = false

    @Option(
        help: ArgumentHelp(
            "The audit key file (overrides audit.key_file), for the subject's digest in the audit event.",
            valueName: "path"))
    var auditKeyFile: String?

    @OptionGroup var output: FormatOptions

    func validate() throws {
        guard !settings.isEmpty else {
            throw ValidationError(
                "give at least one --set TABLE.COLUMN=VALUE, e.g. --set shop.customer.full_name='Ada King'")
        }
        for setting in settings { _ = try Self.change(parsing: setting) }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let reference = try subject.reference()
            let changes = try settings.map(Self.change(parsing:))
            let digester = try (auditKeyFile ?? context.settings.auditKeyFile).map {
                try AuditKey.read(path: $0).digester
            }
            let connection = try await context.connectToCurrentSchema()
            var report: CorrectionReport
            do {
                let found = try await reference.find(on: connection)
                let plan = try await SubjectCorrection.plan(subject: found, changes: changes, on: connection)
                report = CorrectionReport(plan, subject: found.reference)
                if plan.rowCount > 0 {
                    try show(report)
                    guard try confirmed(report) else {
                        await connection.close()
                        StandardError.write("gallra: not confirmed; nothing was changed.\n")
                        return
                    }
                    let event = try await SubjectCorrection.apply(
                        plan, subjectDigest: digester?.digest(table: plan.subjectTable, key: plan.key),
                        osUser: Export.operatingSystemUser(), on: connection)
                    report.applied = true
                    report.auditEvent = event.sequence
                }
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            switch output.format {
            case .json: try JSONOutput.print(report)
            case .text: Swift.print(report.outcomeText)
            }
            if report.applied, digester == nil {
                StandardError.write(
                    "gallra: warning: no audit key: the correction's audit event holds no subject digest (audit "
                        + "lookup cannot list it). Give --audit-key-file or set audit.key_file.\n")
            }
        }
    }

    /// The rows that change, shown before asking: the diff (text), or nothing yet for JSON, which prints one
    /// document at the end.
    private func show(_ report: CorrectionReport) throws {
        if output.format == .text { Swift.print(report.diffText) }
    }

    /// Whether the operator confirmed: `--yes`, or `y` on the terminal. Without a terminal and without `--yes`,
    /// exit 64 (after the JSON document, for a program that asked).
    private func confirmed(_ report: CorrectionReport) throws -> Bool {
        if yes { return true }
        guard isatty(0) == 1 else {
            if output.format == .json { try JSONOutput.print(report) }
            throw CommandFailure(
                .usage,
                "stdin is not a terminal, so the correction cannot be confirmed: add --yes to make the changes "
                    + "shown. Nothing was changed.")
        }
        // The JSON document comes at the end; the operator sees the rows before answering.
        if output.format == .json { StandardError.write(report.diffText + "\n") }
        StandardError.write(
            "Change \(report.rowCount) \(report.rowCount == 1 ? "row" : "rows") of \(report.subject)'s data? [y/N] ")
        let answer = readLine(strippingNewline: true)?.trimmingWhitespace().lowercased() ?? ""
        return answer == "y" || answer == "yes"
    }

    /// `TABLE.COLUMN=VALUE`: the table and the column in SQL identifier syntax (split at the last dot outside
    /// double quotes before the first `=` outside them), the value as given. Errors name the table and the column,
    /// never the value.
    static func change(parsing text: String) throws -> CorrectionChange {
        guard let equals = firstUnquoted("=", in: text[...]) else {
            throw ValidationError(
                "--set takes TABLE.COLUMN=VALUE, e.g. shop.customer.full_name='Ada King' (an = after the column).")
        }
        let target = text[..<equals]
        guard let dot = lastUnquoted(".", in: target) else {
            throw ValidationError(
                "--set \(target)=...: name the table and the column, TABLE.COLUMN (e.g. shop.customer.full_name).")
        }
        let table: QualifiedName
        let column: ColumnName
        do {
            table = try QualifiedName(parsing: String(target[..<dot]))
            column = try ColumnName(parsing: String(target[target.index(after: dot)...]))
        } catch {
            throw ValidationError("--set \(target)=...: \(error.message)")
        }
        return CorrectionChange(table: table, column: column, value: String(text[text.index(after: equals)...]))
    }

    private static func firstUnquoted(_ wanted: Character, in text: Substring) -> String.Index? {
        var inQuotes = false
        for index in text.indices {
            if text[index] == "\"" { inQuotes.toggle() }
            if text[index] == wanted, !inQuotes { return index }
        }
        return nil
    }

    private static func lastUnquoted(_ wanted: Character, in text: Substring) -> String.Index? {
        var inQuotes = false
        var found: String.Index?
        for index in text.indices {
            if text[index] == "\"" { inQuotes.toggle() }
            if text[index] == wanted, !inQuotes { found = index }
        }
        return found
    }
}

/// What `gallra correct` shows and did: the subject, per table the rows that change with old and new values, and
/// whether it was applied with which audit event.
struct CorrectionReport: Encodable {
    struct Table: Encodable {
        var table: String
        var rows: [Row]
    }

    struct Row: Encodable {
        /// The row's primary key (column → value as text).
        var key: [String: String?]
        var changes: [Change]
    }

    struct Change: Encodable {
        var column: String
        var old: String?
        var new: String?

        enum CodingKeys: String, CodingKey { case column, old, new }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(column, forKey: .column)
            try container.encode(old, forKey: .old)
            try container.encode(new, forKey: .new)
        }
    }

    var subject: String
    var tables: [Table]
    var rowCount: Int
    var applied = false
    /// The sequence number of the correction's event in `gallra.audit_event`.
    var auditEvent: Int64?
    private var identities: [[String]]

    enum CodingKeys: String, CodingKey {
        case subject, tables, rowCount, applied, auditEvent
    }

    init(_ plan: CorrectionPlan, subject: String) {
        self.subject = subject
        rowCount = plan.rowCount
        identities = plan.tables.map(\.identityColumns)
        tables = plan.tables.map { table in
            Table(
                table: table.table,
                rows: table.rows.map { row in
                    Row(
                        key: Dictionary(
                            zip(table.identityColumns, row.identity).map { ($0, $1) }, uniquingKeysWith: { a, _ in a }),
                        changes: table.columns.indices.map {
                            Change(column: table.columns[$0], old: row.old[$0], new: row.new[$0])
                        })
                })
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(subject, forKey: .subject)
        try container.encode(tables, forKey: .tables)
        try container.encode(rowCount, forKey: .rowCount)
        try container.encode(applied, forKey: .applied)
        try container.encode(auditEvent, forKey: .auditEvent)
    }

    /// Per table, each row that changes and its columns: `old → new`.
    var diffText: String {
        var lines = ["\(subject): \(rowCount) \(rowCount == 1 ? "row changes" : "rows change")"]
        for (index, table) in tables.enumerated() where !table.rows.isEmpty {
            lines.append("  \(table.table)")
            for row in table.rows {
                let key = identities[index].map { "\($0) \(row.key[$0].flatMap { $0 } ?? "NULL")" }
                    .joined(separator: ", ")
                lines.append("    \(key):")
                for change in row.changes {
                    lines.append("      \(change.column): \(Self.shown(change.old)) → \(Self.shown(change.new))")
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// What the command did, after the diff.
    var outcomeText: String {
        guard rowCount > 0 else {
            return "\(subject): nothing to change; the subject's rows already hold these values"
        }
        return "changed \(rowCount) \(rowCount == 1 ? "row" : "rows") in one transaction; recorded as audit event "
            + "\(auditEvent.map(String.init) ?? "?")"
    }

    static func shown(_ value: String?) -> String {
        guard let value else { return "NULL" }
        var text = "\""
        for character in value {
            switch character {
            case "\\": text += "\\\\"
            case "\"": text += "\\\""
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\r\n": text += "\\r\\n"
            case "\t": text += "\\t"
            default: text.append(character)
            }
        }
        return text + "\""
    }
}
