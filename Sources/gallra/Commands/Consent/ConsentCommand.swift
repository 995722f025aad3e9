import ArgumentParser

struct ConsentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent",
        abstract: "Record, withdraw and look up a customer's consent to a policy.",
        discussion: """
            For customer service: a customer who gives or withdraws consent at the desk, on the phone or by \
            mail. The policy must say legal_basis: consent. The subject is TABLE:KEY, the policy's subject \
            table (schema-qualified) and the customer's key, e.g. shop.customer:1234, or TABLE:COLUMN=VALUE, a \
            value that exactly one customer has, e.g. shop.customer:email=ada@example.org. The customer must \
            exist: no row exits 66, several rows with that value exit 65. docs/consent.md describes the \
            registry; the shop's own code records consent with the same SQL functions.

            EXAMPLES:
              gallra consent grant --subject shop.customer:1234 --policy revoked-newsletter-consent --source store
              gallra consent revoke --subject shop.customer:1234 --policy revoked-newsletter-consent --source app
              gallra consent show --subject shop.customer:1234
              gallra consent show --subject shop.customer:email=ada@example.org
              gallra consent list --policy revoked-newsletter-consent --format json
            """,
        subcommands: [GrantConsent.self, RevokeConsent.self, ShowConsent.self, ListConsent.self]
    )
}

/// The options `grant` and `revoke` share.
struct ConsentEventOptions: ParsableArguments {
    @OptionGroup var subject: SubjectOption

    @Option(help: ArgumentHelp("The policy's name (gallra policy list shows them).", valueName: "name"))
    var policy: String

    @Option(
        help: ArgumentHelp(
            "Where the customer said so: a short word such as web, store, club, app or phone.", valueName: "word"))
    var source: String?

    @Option(
        help: ArgumentHelp(
            "Optional proof, at most 1024 bytes: a form version, a ticket number (not the customer's data).",
            valueName: "text"))
    var evidence: String?

}
