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

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a register extract: everything held about one subject, and what was done with it.",
        discussion: """
            For a person's request to see their data (GDPR Art. 15). In one read-only snapshot, export reads the \
            subject's row and, for every data point of every active and draft policy over the subject's table, \
            the rows that belong to the subject (all columns), grouped by table, each table naming the policies \
            that cover it; per policy its version, state, description, purpose, legal basis and retention rule; \
            the subject's consent history; and, with the audit key, the subject's processing history from the \
            audit trail (runs that processed it, earlier extracts). docs/export.md describes the document; \
            docs/export.schema.json is its JSON Schema.

            --format json (the default) writes that document, for programs; --format html writes one \
            self-contained page for the person the data is about, to read or print: no scripts, nothing loaded \
            from elsewhere, one table per table of data.

            Each extract is recorded in the audit trail (gallra.audit_export: the subject's digest, the database \
            role and operating-system user, when, the format); gallra audit lookup lists a subject's extracts and \
            gallra audit verify checks their chain. Without an audit key the extract says that the processing \
            history could not be read, and its record holds no digest.

            --format csv writes a zip archive: one CSV file per table (RFC 4180, a header row, UTF-8; NULL an \
            empty field, an empty text ""), manifest.json with everything else, and README.txt; it needs --out.

            --out writes a file of mode 0600, which appears only once complete and never replaces an existing \
            file unless --force is given; without --out the extract goes to stdout. Rows are read and written in \
            chunks, so memory does not grow with them.

            Examples:
              gallra export --subject shop.customer:1234 --out customer-1234.json
              gallra export --subject '"Shop"."Customer":7' --audit-key-file /etc/gallra/audit-key > extract.json
              gallra export --subject shop.customer:email=ada@example.org --out ada.json
              gallra export --subject shop.customer:1234 --format csv --out customer-1234.zip
              gallra export --subject shop.customer:email=ada@example.org --format html --out ada.html

            Exit status: 0 written; 64 a wrong option, a format not available, csv without --out, or --out naming \
            an existing file; \
            65 no active or draft policy has its subjects in the table; 66 no subject has that key; 78 no schema \
            or a wrong setting.
            """
    )

    /// The formats of an extract: JSON, HTML and CSV.
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case json
        case html
        case csv
    }

    @OptionGroup var global: GlobalOptions

    @OptionGroup var subject: SubjectOption

    @Option(
        help:
            "The format of the extract: json (a document for programs), html (a page for the person) or csv (a zip archive of CSV files; needs --out)."
    )
    var format: Format = .json

    @Option(help: ArgumentHelp("Write the extract to this file (mode 0600) instead of stdout.", valueName: "path"))
    var out: String?

    @Flag(help: "Replace the --out file if it exists.")
    var force = false

    @Option(
        help: ArgumentHelp(
            "The audit key file (overrides audit.key_file), to read the subject's processing history.",
            valueName: "path"))
    var auditKeyFile: String?

    func validate() throws {
        if format == .csv, out == nil {
            throw ValidationError(
                "--format csv writes a zip archive, which is not written to stdout: give --out PATH (a .zip file).")
        }
        if force, out == nil {
            throw ValidationError("--force replaces the file of --out; give --out PATH with it.")
        }
        if let out, out.isEmpty || out.hasSuffix("/") {
            throw ValidationError("--out takes the path of a file to write, not \"\(out)\".")
        }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let reference = try subject.reference()
            let keyPath = auditKeyFile ?? context.settings.auditKeyFile
            let digester = try keyPath.map { try AuditKey.read(path: $0).digester }
            let file = try ExtractFile(out.map { .file(path: $0, force: force) } ?? .standardOutput)
            let connection = try await context.connectToCurrentSchema()
            do {
                // A COLUMN=VALUE is found first, in exactly one row; the extract then reads by its key.
                let key = try await reference.key(on: connection)
                let writer: any ExtractWriter =
                    switch format {
                    case .json: JSONExtractWriter(file: file)
                    case .html: HTMLExtractWriter(file: file)
                    case .csv: try CSVExtractWriter(file: file)
                    }
                let written = try await SubjectExtract.write(
                    table: reference.table, key: key, digester: digester, on: connection, to: writer)
                try file.flush()
                try await AuditExports.append(
                    subjectTable: written.subjectTable, subjectDigest: written.subjectDigest,
                    format: format.rawValue, osUser: Self.operatingSystemUser(), on: connection)
                try file.publish()
                await connection.close()
            } catch {
                file.discard()
                await connection.close()
                throw error
            }
            if digester == nil {
                StandardError.write(
                    "gallra: warning: no audit key: the extract leaves out the subject's processing history, and "
                        + "its record in the audit trail has no subject digest (audit lookup cannot list it). "
                        + "Give --audit-key-file or set audit.key_file.\n")
            }
        }
    }

    /// The name of the effective user, or its number when it has no name.
    static func operatingSystemUser() -> String {
        let uid = geteuid()
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return String(cString: name)
    }
}
