extension Schema {
    /// Version 2: runs, the audit trail (hash-chained blocks of subject records) and processed subjects.
    static let migration2 = Migration(
        version: 2,
        description: "run, audit_head, audit_block, audit_subject (append-only, hash-chained), processed",
        statements: [
            """
            CREATE TABLE gallra.run (
                id             uuid PRIMARY KEY,
                mode           text NOT NULL CONSTRAINT run_mode_known CHECK (mode IN ('live', 'dry')),
                trigger        text NOT NULL,
                as_of          timestamptz NOT NULL,
                started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
                finished_at    timestamptz,
                outcome        text NOT NULL DEFAULT 'running' CONSTRAINT run_outcome_known
                               CHECK (outcome IN ('running', 'done', 'partial', 'refused', 'failed', 'interrupted')),
                counts         jsonb NOT NULL DEFAULT '{}',
                host           text,
                pid            integer,
                gallra_version text
            )
            """,
            "COMMENT ON TABLE gallra.run IS 'One row per live run: when, why, how it ended, and what it did.'",
            "COMMENT ON COLUMN gallra.run.id IS 'The run id, also in the journal as GALLRA_RUN_ID.'",
            "COMMENT ON COLUMN gallra.run.mode IS 'live (dry runs write nothing, so they have no row).'",
            "COMMENT ON COLUMN gallra.run.trigger IS 'What started it: schedule, manual, signal, notify or erase.'",
            "COMMENT ON COLUMN gallra.run.as_of IS 'The instant expiry was evaluated at.'",
            "COMMENT ON COLUMN gallra.run.started_at IS 'When the run started.'",
            "COMMENT ON COLUMN gallra.run.finished_at IS 'When it ended; null while running or after a crash.'",
            """
            COMMENT ON COLUMN gallra.run.outcome IS
                'running; done; partial (batches skipped); refused (a guard refused a policy); failed; interrupted'
            """,
            """
            COMMENT ON COLUMN gallra.run.counts IS
                'Per policy: subjects expiring, exempted, processed, and rows deleted, anonymized, retained per table.'
            """,
            "COMMENT ON COLUMN gallra.run.host IS 'The host gallra ran on.'",
            "COMMENT ON COLUMN gallra.run.pid IS 'The gallra process id.'",
            "COMMENT ON COLUMN gallra.run.gallra_version IS 'The gallra version that ran it.'",

            """
            CREATE TABLE gallra.audit_head (
                singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT audit_head_singleton CHECK (singleton),
                sequence  bigint NOT NULL,
                hash      text NOT NULL
            )
            """,
            "INSERT INTO gallra.audit_head VALUES (true, 0, repeat('0', 64))",
            """
            COMMENT ON TABLE gallra.audit_head IS
                'The last block of the audit chain, locked by each batch while it appends: blocks are strictly sequential.'
            """,
            "COMMENT ON COLUMN gallra.audit_head.singleton IS 'Always true: the table has one row.'",
            "COMMENT ON COLUMN gallra.audit_head.sequence IS 'The sequence number of the last block (0: none yet).'",
            "COMMENT ON COLUMN gallra.audit_head.hash IS 'The hash of the last block (64 zeros: none yet).'",

            """
            CREATE TABLE gallra.audit_block (
                sequence       bigint PRIMARY KEY CONSTRAINT audit_block_sequence_positive CHECK (sequence > 0),
                run            uuid NOT NULL,
                policy         text NOT NULL,
                policy_version integer NOT NULL,
                created_at     timestamptz NOT NULL,
                subjects       integer NOT NULL,
                records_hash   text NOT NULL,
                previous_hash  text NOT NULL,
                hash           text NOT NULL UNIQUE
            )
            """,
            "CREATE INDEX audit_block_run ON gallra.audit_block (run)",
            "CREATE INDEX audit_block_policy_created ON gallra.audit_block (policy, created_at)",
            """
            COMMENT ON TABLE gallra.audit_block IS
                'One block per batch, chained: hash is SHA-256 over its fields, records_hash and previous_hash.'
            """,
            "COMMENT ON COLUMN gallra.audit_block.sequence IS '1, 2, 3, ... without gaps.'",
            "COMMENT ON COLUMN gallra.audit_block.run IS 'The run (gallra.run.id) whose batch wrote the block.'",
            "COMMENT ON COLUMN gallra.audit_block.policy IS 'The policy applied.'",
            "COMMENT ON COLUMN gallra.audit_block.policy_version IS 'The version of the policy applied.'",
            "COMMENT ON COLUMN gallra.audit_block.created_at IS 'When the batch ran (to the microsecond, hashed).'",
            "COMMENT ON COLUMN gallra.audit_block.subjects IS 'How many subject records the block holds.'",
            "COMMENT ON COLUMN gallra.audit_block.records_hash IS 'SHA-256 over the block''s subject records in order.'",
            "COMMENT ON COLUMN gallra.audit_block.previous_hash IS 'The hash of the block before (64 zeros for the first).'",
            "COMMENT ON COLUMN gallra.audit_block.hash IS 'This block''s hash.'",

            """
            CREATE TABLE gallra.audit_subject (
                block          bigint NOT NULL REFERENCES gallra.audit_block (sequence),
                ordinal        integer NOT NULL,
                subject_digest text NOT NULL,
                counts         jsonb NOT NULL,
                PRIMARY KEY (block, ordinal)
            )
            """,
            "CREATE INDEX audit_subject_digest ON gallra.audit_subject (subject_digest)",
            """
            COMMENT ON TABLE gallra.audit_subject IS
                'What a batch did to each subject it processed, identified by a keyed digest, never in clear.'
            """,
            "COMMENT ON COLUMN gallra.audit_subject.block IS 'The block (batch) the record belongs to.'",
            "COMMENT ON COLUMN gallra.audit_subject.ordinal IS 'The record''s place in its block.'",
            """
            COMMENT ON COLUMN gallra.audit_subject.subject_digest IS
                'HMAC-SHA-256 of table:key under the audit key; gallra audit lookup recomputes it.'
            """,
            """
            COMMENT ON COLUMN gallra.audit_subject.counts IS
                'Rows per table and action: [{"table": ..., "action": deleted|anonymized|retained, "rows": n}].'
            """,

            """
            CREATE TABLE gallra.processed (
                policy       text NOT NULL,
                subject_key  text NOT NULL,
                run          uuid NOT NULL,
                processed_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (policy, subject_key)
            )
            """,
            """
            COMMENT ON TABLE gallra.processed IS
                'Subjects a policy processed whose row remains (anonymized), so the policy does not process them again.'
            """,
            "COMMENT ON COLUMN gallra.processed.policy IS 'The policy.'",
            "COMMENT ON COLUMN gallra.processed.subject_key IS 'The subject''s key as text (the row itself remains).'",
            "COMMENT ON COLUMN gallra.processed.run IS 'The run that processed it.'",
            "COMMENT ON COLUMN gallra.processed.processed_at IS 'When.'",

            """
            CREATE FUNCTION gallra.audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'gallra.% is append-only: audit records are never changed or deleted', TG_TABLE_NAME
                    USING ERRCODE = 'restrict_violation',
                          HINT = 'The audit trail is evidence; gallra audit verify detects any change to it.';
            END
            $$
            """,
            "COMMENT ON FUNCTION gallra.audit_is_append_only() IS 'Refuses UPDATE, DELETE and TRUNCATE of the audit trail.'",
            """
            CREATE TRIGGER audit_block_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON gallra.audit_block
                FOR EACH STATEMENT EXECUTE FUNCTION gallra.audit_is_append_only()
            """,
            """
            CREATE TRIGGER audit_subject_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON gallra.audit_subject
                FOR EACH STATEMENT EXECUTE FUNCTION gallra.audit_is_append_only()
            """,
        ]
    )
}
