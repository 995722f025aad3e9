import ArgumentParser

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify and read the audit trail: what gallra did, when, under which policy.",
        discussion: """
            Every batch of a live run appends one block to the audit trail (gallra.audit_block and \
            gallra.audit_subject): the run, the policy and its version, and for each subject a keyed digest \
            (never the subject's key) with the rows deleted, anonymized and retained per table. Blocks are \
            chained by SHA-256, so a changed, deleted, inserted or reordered record or block breaks the chain.
            """,
        subcommands: [VerifyAudit.self, ShowAudit.self, LookupAudit.self, AuditRuns.self]
    )
}
