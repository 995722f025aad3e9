extension Schema {
    /// Version 6: the keys of gallra's bookkeeping compare bytewise (`COLLATE "C"`).
    ///
    /// Every batch probes `processed` for each candidate subject, and writes a record per subject and a row per
    /// subject or anonymized row it leaves in place, so these keys are compared tens of thousands of times a
    /// batch. They are digests, key text and names, only ever matched for equality, where a linguistic collation
    /// gives the same answers as a byte comparison at a higher cost: with the server's `C.UTF-8` the statements
    /// that use them took about a tenth less time, and collations such as `en_US.UTF-8` cost more than
    /// `C.UTF-8`. The migration rebuilds the indexes under an exclusive lock, which on a large audit trail takes
    /// as long as building them does.
    static let migration6 = Migration(
        version: 6,
        description: "processed, processed_row and audit_subject keys compare bytewise (COLLATE \"C\")",
        statements: [
            """
            ALTER TABLE gallra.processed
                ALTER COLUMN policy TYPE text COLLATE "C",
                ALTER COLUMN subject_key TYPE text COLLATE "C"
            """,
            """
            ALTER TABLE gallra.processed_row
                ALTER COLUMN policy TYPE text COLLATE "C",
                ALTER COLUMN table_name TYPE text COLLATE "C",
                ALTER COLUMN path TYPE text COLLATE "C",
                ALTER COLUMN row_key TYPE text COLLATE "C"
            """,
            #"ALTER TABLE gallra.audit_subject ALTER COLUMN subject_digest TYPE text COLLATE "C""#,
        ])
}
