extension Schema {
    /// Version 13: each audit block names the audit key its subject digests were made with, by a check value that
    /// reveals nothing of the key (`SubjectDigester.keyCheck`). `gallra audit lookup` tells by it a key that made
    /// none of a table's records from a subject that was never processed.
    static let migration13 = Migration(
        version: 13,
        description: "audit_block.key_check: the audit key a block's digests were made with",
        statements: [
            """
            ALTER TABLE gallra.audit_block ADD COLUMN key_check text
                CONSTRAINT audit_block_key_check_is_hex CHECK (key_check ~ '^[0-9a-f]{16}$')
            """,
            """
            COMMENT ON COLUMN gallra.audit_block.key_check IS
                'The audit key the block''s subject digests were made with: the first 16 hex digits of HMAC-SHA-256 of "gallra audit key check" under it, which reveals nothing of the key. gallra audit lookup tells a key that made none of a table''s records by it. Not covered by the chain''s hashes; null in blocks written before schema version 13.'
            """,
        ])
}
