import ArgumentParser
import GallraEngine
import GallraPolicy
import GallraPostgres

struct GrantConsent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant",
        abstract: "Record that a customer gave consent to a policy.",
        discussion: """
            Records that the customer accepted the terms of the policy's current version. If consent to that \
            version is already in force, nothing new is recorded, and the command says since when. The customer \
            must exist in the subject table (exit 66 otherwise).

            EXAMPLES:
              gallra consent grant --subject shop.customer:1234 --policy revoked-newsletter-consent \\
                --source store --evidence "signed form, ticket 5521"
              gallra consent grant --subject shop.customer:email=ada@example.org \\
                --policy revoked-newsletter-consent --source phone
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var event: ConsentEventOptions

    @OptionGroup var output: FormatOptions

    func run() async throws {
        try await reportingFailures {
            try await ConsentEventRecording.record(.granted, event, global: global, format: output.format)
        }
    }
}
