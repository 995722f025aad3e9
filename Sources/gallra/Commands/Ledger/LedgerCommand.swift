import ArgumentParser

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "The erasure ledger: the audit trail's copy outside the database, and replay after a restore.",
        subcommands: [ReplayLedger.self]
    )
}
