import ArgumentParser
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct ReleaseHold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Release a legal hold: the policies it stopped apply to the subject again.",
        discussion: """
            ID is the hold's number, as gallra hold add printed it and gallra hold list shows it. The release and \
            its record in gallra.audit_event are written in one transaction; the next run processes the subject \
            if it is due and no other hold keeps it. A hold released already, or whose --until has passed, \
            cannot be released.

            EXAMPLE:
              gallra hold release 7 --reason "case 2026-114 closed"

            Exit status: 0 released; 64 a wrong option; 65 an empty or too long reason, a hold released already \
            or expired; 66 no hold has that id; 78 no schema or a wrong setting.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The hold's id (gallra hold list shows it).", valueName: "id"))
    var id: Int64

    @Option(help: ArgumentHelp("Why the hold ends: 1 to 1024 bytes.", valueName: "text"))
    var reason: String

    @OptionGroup var auditKey: HoldAuditKeyOption

    @OptionGroup var output: FormatOptions

    func validate() throws {
        if id <= 0 {
            throw ValidationError("ID \(id): a hold's id is a positive number (gallra hold list shows them).")
        }
        if reason.isEmpty { throw ValidationError("--reason is empty: say why the hold ends.") }
        if reason.utf8.count > 1024 {
            throw ValidationError("--reason is \(reason.utf8.count) bytes, more than 1024: keep it short.")
        }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let digester = try auditKey.digester(context)
            let hold: Hold = try await context.withCurrentSchema { connection in
                try await Holds.release(
                    id: id, reason: reason, digester: digester, osUser: Export.operatingSystemUser(), on: connection)
            }
            let report = HoldReport(hold)
            switch output.format {
            case .json: try JSONOutput.print(report)
            case .text: Swift.print("hold \(hold.id) on \(report.subject) released")
            }
        }
    }
}
