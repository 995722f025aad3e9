import ArgumentParser
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct PolicyCoverageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coverage",
        abstract: "List the subjects' data no stored policy covers: what an extract or an erasure would miss.",
        discussion: """
            Reads the live catalog and the stored policies (the latest version of each; disabled ones cover \
            nothing) and lists two kinds of gaps:

            Tables that reference a subject table by a foreign key, directly or through other tables, that no \
            policy over that subject table names in data:, each with its path of foreign keys from the subject \
            table. Their rows belong to a subject, and neither an erasure nor an extract reaches them.

            Columns with personal-looking names in tables no policy covers at all (as subject table or data \
            point). A name looks personal when one of its words is email, phone, name, address, birth, ip (or \
            emails, phones, names, firstname, lastname, fullname, surname, addresses, birthday, birthdate); words \
            are split at underscores, digits and case changes and match whole, so contact_email, full_name, \
            ip_address and birth_date are listed and named_by, zip or shipped_at are not. Foreign key columns \
            (address_id) and boolean columns (email_verified) are left out: they hold no personal value themselves.

            A subject table that no on-request policy (expires: on_request) covers gets a warning on stderr: \
            erasure requests for its subjects are refused.

            Exits 0 with the list, even when it is not empty; with --strict, exits 65 when it is not empty.

            EXAMPLES:
              gallra policy coverage
              gallra policy coverage --strict --format json
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Exit 65 when some table or column is not covered.")
    var strict = false

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            let coverage: Coverage
            do {
                coverage = try await Coverage.read(on: connection)
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            switch output.format {
            case .json: try JSONOutput.print(CoverageReport(coverage))
            case .text:
                Swift.print(CoverageReport.text(coverage))
                for table in coverage.withoutErasure {
                    StandardError.write("gallra: warning: \(Coverage.erasureWarning(table))\n")
                }
            }
            if strict, !coverage.isEmpty {
                throw CommandFailure(.dataError, CoverageReport.summary(coverage) + " (--strict)")
            }
        }
    }
}

/// `gallra policy coverage --format json`.
struct CoverageReport: Encodable {
    struct Hop: Encodable {
        var table: String
        var foreignKey: String
        var columns: [String]
    }
    struct Table: Encodable {
        var table: String
        var subjectTable: String
        var path: [Hop]
    }
    struct Column: Encodable {
        var table: String
        var column: String
        var word: String
    }

    var tables: [Table]
    var columns: [Column]
    /// Warnings: subject tables whose erasure requests are refused (no on-request policy).
    var warnings: [String]

    init(_ coverage: Coverage) {
        warnings = coverage.withoutErasure.map(Coverage.erasureWarning)
        tables = coverage.tables.map {
            Table(
                table: $0.table.description, subjectTable: $0.subjectTable.description,
                path: $0.path.map { Hop(table: $0.table.description, foreignKey: $0.foreignKey, columns: $0.columns) })
        }
        columns = coverage.columns.map {
            Column(table: $0.table.description, column: ColumnName($0.column).description, word: $0.word)
        }
    }

    /// `3 tables and 5 columns no policy covers`.
    static func summary(_ coverage: Coverage) -> String {
        let tables = coverage.tables.count
        let columns = coverage.columns.count
        return "\(tables) table\(tables == 1 ? "" : "s") and \(columns) column\(columns == 1 ? "" : "s") "
            + "no policy covers"
    }

    static func text(_ coverage: Coverage) -> String {
        guard !coverage.isEmpty else {
            return "every table that references a subject table is a data point of a policy over it, and no "
                + "personal-looking column is outside the policies"
        }
        var lines: [String] = []
        if !coverage.tables.isEmpty {
            lines.append("tables whose rows belong to a subject, in no policy's data:")
            let table = TextTable(header: ["TABLE", "SUBJECT TABLE", "FOREIGN KEYS FROM THE SUBJECT"])
            for entry in coverage.tables {
                table.add([entry.table.description, entry.subjectTable.description, entry.pathText])
            }
            lines.append(table.render())
        }
        if !coverage.columns.isEmpty {
            if !lines.isEmpty { lines.append("") }
            lines.append("personal-looking columns in tables no policy covers:")
            let table = TextTable(header: ["TABLE", "COLUMN", "WORD"])
            for entry in coverage.columns {
                table.add([entry.table.description, ColumnName(entry.column).description, entry.word])
            }
            lines.append(table.render())
        }
        lines.append("")
        lines.append(summary(coverage))
        return lines.joined(separator: "\n")
    }
}
