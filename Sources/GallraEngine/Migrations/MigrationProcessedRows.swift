extension Schema {
    /// Version 4: rows a policy's subjects point to that the policy has anonymized, so that it does not act on
    /// them again in a later batch or run.
    static let migration4 = Migration(
        version: 4,
        description: "processed_row (rows a policy's subjects point to that it anonymized)",
        statements: [
            """
            CREATE TABLE gallra.processed_row (
                policy       text NOT NULL,
                table_name   text NOT NULL,
                path         text NOT NULL,
                row_key      text NOT NULL,
                fingerprint  text NOT NULL,
                run          uuid NOT NULL,
                processed_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (policy, table_name, path, row_key)
            )
            """,
            """
            COMMENT ON TABLE gallra.processed_row IS
                'Rows subjects point to (an address) that a policy anonymized: while a row still holds what the policy wrote, the policy does not act on it again, nor count it, for a subject of a later batch or run.'
            """,
            "COMMENT ON COLUMN gallra.processed_row.policy IS 'The policy.'",
            "COMMENT ON COLUMN gallra.processed_row.table_name IS 'The row''s table, schema-qualified.'",
            """
            COMMENT ON COLUMN gallra.processed_row.path IS
                'The data point''s path from the subject (its links, as text): two data points on one table are apart.'
            """,
            """
            COMMENT ON COLUMN gallra.processed_row.row_key IS
                'The row''s referenced key as jsonb text, e.g. {"id": 5} (the row itself remains).'
            """,
            """
            COMMENT ON COLUMN gallra.processed_row.fingerprint IS
                'SHA-256 (hex) of the anonymized columns as the policy left them; a row changed since is acted on again.'
            """,
            "COMMENT ON COLUMN gallra.processed_row.run IS 'The run that last anonymized it.'",
            "COMMENT ON COLUMN gallra.processed_row.processed_at IS 'When.'",
        ]
    )
}
