import ArgumentParser
import GallraCore
import GallraEngine
import GallraPolicy
import GallraPostgres

struct AddHold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Place a legal hold on one subject.",
        discussion: """
            From the moment the command returns, no run deletes or anonymizes the subject's data under the \
            policies the hold stops: every policy over the subject's table, or with --policy only that one (a \
            stored policy over the table; gallra policy list shows them). The hold lasts until released (gallra \
            hold release ID), or with --until until that time, when it ends by itself. --until takes a date \
            (midnight UTC at its start) or a date and time (UTC unless an offset is given); it must be in the \
            future. The reason (1 to 1024 bytes) is for the people who read the hold later: a case number, not \
            the customer's data.

            The command prints the hold's id. The hold and its record in gallra.audit_event are written in one \
            transaction.

            EXAMPLES:
              gallra hold add --subject shop.customer:1234 --reason "case 2026-114"
              gallra hold add --subject shop.customer:email=ada@example.org --reason "chargeback 88812" \\
                  --until 2027-03-31 --policy delete-inactive-customers

            Exit status: 0 placed; 64 a wrong option; 65 an empty or too long reason, --until not in the future, \
            a --policy that is not a stored policy over the table, a value several rows have; 66 no subject has \
            that key or value; 78 no schema or a wrong setting.
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var subject: SubjectOption

    @Option(help: ArgumentHelp("Why the subject is held: a case or ticket number, 1 to 1024 bytes.", valueName: "text"))
    var reason: String

    @Option(
        help: ArgumentHelp(
            "When the hold ends by itself: a date (2027-03-31) or a date and time (UTC unless an offset is given).",
            valueName: "date|timestamp"))
    var until: String?

    @Option(
        help: ArgumentHelp(
            "Stop only this policy (a stored policy over the subject's table); without it, every policy over the "
                + "table.", valueName: "name"))
    var policy: String?

    @OptionGroup var auditKey: HoldAuditKeyOption

    @OptionGroup var output: FormatOptions

    func validate() throws {
        if reason.isEmpty {
            throw ValidationError("--reason is empty: say why the subject is held (a case or ticket number).")
        }
        if reason.utf8.count > 1024 {
            throw ValidationError(
                "--reason is \(reason.utf8.count) bytes, more than 1024: keep it short (a case or ticket number).")
        }
        if let until, TimeText.parseInstant(until) == nil {
            throw ValidationError(
                "--until \(until): not a date or timestamp; write it as ISO 8601, e.g. 2027-03-31 or "
                    + "2027-03-31T18:00:00+01:00")
        }
        if let policy, policy.isEmpty {
            throw ValidationError("--policy is empty: name a policy, or leave --policy out to stop every policy.")
        }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let reference = try subject.reference()
            let digester = try auditKey.digester(context)
            let hold: Hold = try await context.withCurrentSchema { connection in
                try await Holds.place(
                    Holds.Placement(
                        table: reference.table, match: reference.match, reason: reason,
                        until: until.flatMap(TimeText.parseInstant).map(PostgresTimestamp.init), policy: policy),
                    digester: digester, osUser: Export.operatingSystemUser(), on: connection)
            }
            let report = HoldReport(hold)
            switch output.format {
            case .json: try JSONOutput.print(report)
            case .text:
                Swift.print(
                    "hold \(hold.id) placed on \(report.subject), \(report.untilText): "
                        + (hold.policy.map { "policy \($0) leaves" } ?? "every policy over the table leaves")
                        + " the subject alone")
            }
            if digester == nil {
                StandardError.write(
                    "gallra: warning: no audit key: the hold and its record in the audit trail have no subject "
                        + "digest (audit lookup cannot list them). Give --audit-key-file or set audit.key_file.\n")
            }
        }
    }
}
