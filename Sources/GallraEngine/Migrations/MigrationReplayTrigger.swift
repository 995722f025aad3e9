extension Schema {
    /// Version 14: a run's trigger may be `replay`, the run of `gallra ledger replay` that processes again, after a
    /// restore, the subjects the erasure ledger records since the backup. The column has no CHECK (the trigger is
    /// text for people); its comment lists the triggers.
    static let migration14 = Migration(
        version: 14,
        description: "run.trigger: replay, the run of gallra ledger replay after a restore",
        statements: [
            """
            COMMENT ON COLUMN gallra.run.trigger IS
                'What started it: schedule, manual, signal, notify, erase (an erasure request), or replay (gallra ledger replay after a restore: the subjects the ledger records since the backup, processed again).'
            """
        ])
}
