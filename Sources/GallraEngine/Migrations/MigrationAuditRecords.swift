extension Schema {
    /// Version 5: subject records without a foreign key to their block.
    ///
    /// The key's check ran once per record: a lookup and a row lock on the block, nearly half the cost of writing
    /// a batch's records. It guarded nothing the chain does not: `gallra audit verify` reports a record filed
    /// under a block that does not exist, and the records' hash in each block covers exactly its records.
    static let migration5 = Migration(
        version: 5,
        description: "audit_subject without a foreign key to audit_block (gallra audit verify checks it)",
        statements: [
            "ALTER TABLE gallra.audit_subject DROP CONSTRAINT IF EXISTS audit_subject_block_fkey",
            """
            COMMENT ON COLUMN gallra.audit_subject.block IS
                'The block (batch) the record belongs to; gallra audit verify reports a record under a block that does not exist.'
            """,
        ])
}
