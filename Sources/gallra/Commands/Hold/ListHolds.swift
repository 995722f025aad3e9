import ArgumentParser
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct ListHolds: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List legal holds: those in force, or with --all every hold placed.",
        discussion: """
            Without --all, the holds in force now: not released, and their --until (if any) still ahead. With \
            --all, released and expired holds too. --subject lists one subject's holds; a subject processed after \
            its hold ended is named by its digest only, which needs the audit key (--audit-key-file or \
            audit.key_file) to match.

            EXAMPLES:
              gallra hold list
              gallra hold list --all --subject shop.customer:1234
              gallra hold list --format json
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "List released and expired holds too.")
    var all = false

    @Option(
        help: ArgumentHelp(
            "Only this subject's holds: its table, a colon, and its key or column=value.",
            valueName: "table:key|table:column=value"))
    var subject: String?

    @OptionGroup var auditKey: HoldAuditKeyOption

    @OptionGroup var output: FormatOptions

    func validate() throws {
        if let subject { _ = try SubjectReference(parsing: subject) }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let reference = try subject.map { try SubjectReference(parsing: $0) }
            let digester = try auditKey.digester(context)
            let holds: [Hold] = try await context.withCurrentSchema { connection in
                var named: (table: String, key: String)?
                if let reference {
                    // The key as PostgreSQL prints it when the row is there; as typed when it is gone.
                    let key: String
                    do {
                        key = try await reference.find(on: connection).key
                    } catch let error as SubjectFinderError where error.code == .noSuchSubject {
                        guard let typed = reference.key else { throw error }
                        key = typed
                    }
                    named = (reference.table.description, key)
                }
                return try await Holds.list(
                    all ? .all : .inForce, subject: named,
                    digest: named.flatMap { subject in digester?.digest(table: subject.table, key: subject.key) },
                    on: connection)
            }
            let reports = holds.map(HoldReport.init)
            switch output.format {
            case .json: try JSONOutput.print(reports)
            case .text:
                guard !reports.isEmpty else {
                    var line = all ? "no hold was ever placed" : "no hold is in force"
                    if subject != nil {
                        line += " on that subject"
                        if all, digester == nil {
                            // Holds of subjects processed since name them by digest only.
                            line +=
                                " by its key (without the audit key, holds naming it by digest are not found: "
                                + "give --audit-key-file or set audit.key_file)"
                        }
                    }
                    Swift.print(line)
                    return
                }
                let table = TextTable(header: ["ID", "SUBJECT", "POLICY", "STATE", "UNTIL", "PLACED", "REASON"])
                for report in reports {
                    table.add([
                        String(report.id), report.subject, report.policy ?? "(every policy)",
                        report.state.replacing("_", with: " "), report.until.map(Self.day) ?? "-",
                        String(report.placedAt.prefix(19)).replacing("T", with: " "), report.reason,
                    ])
                }
                Swift.print(table.render())
            }
        }
    }

    /// The date of an RFC 3339 instant when it is midnight UTC, else the instant.
    static func day(_ instant: String) -> String {
        instant.hasSuffix("T00:00:00Z") ? String(instant.prefix(10)) : instant
    }
}
