extension Schema {
    /// Version 11: the record of register extracts (`gallra export`), chained like the audit blocks.
    static let migration11 = Migration(
        version: 11,
        description: "audit_export (each register extract: subject digest, who, when, format; hash-chained)",
        statements: [
            """
            CREATE TABLE gallra.audit_export (
                sequence       bigint PRIMARY KEY CHECK (sequence > 0),
                created_at     timestamptz NOT NULL,
                subject_table  text NOT NULL,
                subject_digest text CHECK (subject_digest ~ '^[0-9a-f]{64}$'),
                format         text NOT NULL CHECK (format IN ('json', 'html', 'csv')),
                database_role  text NOT NULL,
                os_user        text NOT NULL,
                previous_hash  text NOT NULL CHECK (previous_hash ~ '^[0-9a-f]{64}$'),
                hash           text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$')
            )
            """,
            """
            COMMENT ON TABLE gallra.audit_export IS
                'One row per register extract (gallra export): whose, by whom, when, in which format. Rows are chained by SHA-256 like the audit blocks; gallra audit verify recomputes the chain and gallra audit lookup lists a subject''s extracts.'
            """,
            "COMMENT ON COLUMN gallra.audit_export.sequence IS '1, 2, 3, ... without gaps: the order of the chain.'",
            "COMMENT ON COLUMN gallra.audit_export.created_at IS 'When the extract was written.'",
            "COMMENT ON COLUMN gallra.audit_export.subject_table IS 'The subject table, schema-qualified.'",
            """
            COMMENT ON COLUMN gallra.audit_export.subject_digest IS
                'HMAC-SHA-256 (hex) of TABLE:KEY under the audit key, as in gallra.audit_subject; null when the extract was made without an audit key. Never the key.'
            """,
            "COMMENT ON COLUMN gallra.audit_export.format IS 'The format written: json, html or csv.'",
            "COMMENT ON COLUMN gallra.audit_export.database_role IS 'The database role that read the data (current_user).'",
            "COMMENT ON COLUMN gallra.audit_export.os_user IS 'The operating-system user that ran gallra export.'",
            "COMMENT ON COLUMN gallra.audit_export.previous_hash IS 'The hash of the previous extract record (64 zeros for the first).'",
            "COMMENT ON COLUMN gallra.audit_export.hash IS 'SHA-256 over this record''s fields and previous_hash.'",
            "CREATE INDEX audit_export_subject_digest ON gallra.audit_export (subject_digest)",
            """
            CREATE TRIGGER audit_export_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON gallra.audit_export
                FOR EACH STATEMENT EXECUTE FUNCTION gallra.audit_is_append_only()
            """,
        ])
}
