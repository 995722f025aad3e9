/// gallra's tables for runs and the audit trail (migration 2 of the `gallra` schema).
enum RunSchema {
    static let description = "runs, the audit trail and processed subjects"

    static let sql = """
        CREATE TABLE gallra.run (
            id uuid PRIMARY KEY,
            mode text NOT NULL CHECK (mode IN ('live', 'dry')),
            trigger text NOT NULL,
            as_of timestamptz NOT NULL,
            started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            finished_at timestamptz,
            outcome text NOT NULL DEFAULT 'running'
                CHECK (outcome IN ('running', 'done', 'partial', 'refused', 'failed', 'interrupted')),
            counts jsonb NOT NULL DEFAULT '{}',
            host text,
            pid integer,
            gallra_version text
        );
        COMMENT ON TABLE gallra.run IS 'One row per live run: when, why, how it ended, and counts per policy and table.';
        COMMENT ON COLUMN gallra.run.trigger IS 'schedule, manual, signal, notify or erase';
        COMMENT ON COLUMN gallra.run.as_of IS 'The instant expiry was evaluated at.';
        COMMENT ON COLUMN gallra.run.outcome IS
            'running; done; partial (some batches skipped); refused (a guard refused a policy); failed; interrupted';
        COMMENT ON COLUMN gallra.run.counts IS '{policy: {subjects, exempted, tables: {table: {deleted, anonymized, retained}}}}';

        CREATE TABLE gallra.audit_head (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            sequence bigint NOT NULL,
            hash text NOT NULL
        );
        INSERT INTO gallra.audit_head VALUES (true, 0, repeat('0', 64));
        COMMENT ON TABLE gallra.audit_head IS
            'The last block of the audit chain. Locked by each batch while it appends, so blocks are strictly sequential.';

        CREATE TABLE gallra.audit_block (
            sequence bigint PRIMARY KEY CHECK (sequence > 0),
            run uuid NOT NULL,
            policy text NOT NULL,
            policy_version integer NOT NULL,
            created_at timestamptz NOT NULL,
            subjects integer NOT NULL,
            records_hash text NOT NULL,
            previous_hash text NOT NULL,
            hash text NOT NULL UNIQUE
        );
        CREATE INDEX ON gallra.audit_block (run);
        CREATE INDEX ON gallra.audit_block (policy, created_at);
        COMMENT ON TABLE gallra.audit_block IS
            'One block per batch, chained: hash = SHA-256 over the block''s fields, its records'' hash and previous_hash.';

        CREATE TABLE gallra.audit_subject (
            block bigint NOT NULL REFERENCES gallra.audit_block (sequence),
            ordinal integer NOT NULL,
            subject_digest text NOT NULL,
            counts jsonb NOT NULL,
            PRIMARY KEY (block, ordinal)
        );
        CREATE INDEX ON gallra.audit_subject (subject_digest);
        COMMENT ON TABLE gallra.audit_subject IS
            'What a batch did to each subject. subject_digest is HMAC-SHA-256 of table:key under the audit key, never the key.';

        CREATE TABLE gallra.processed (
            policy text NOT NULL,
            subject_key text NOT NULL,
            run uuid NOT NULL,
            processed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (policy, subject_key)
        );
        COMMENT ON TABLE gallra.processed IS
            'Subjects a policy has anonymized (their row remains), so that the policy does not process them again.';

        -- The trail is append-only.
        CREATE FUNCTION gallra.refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'gallra.% is append-only: audit records are never changed or deleted', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END
        $$;
        CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON gallra.audit_block
            FOR EACH STATEMENT EXECUTE FUNCTION gallra.refuse_audit_change();
        CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON gallra.audit_subject
            FOR EACH STATEMENT EXECUTE FUNCTION gallra.refuse_audit_change();
        """
}
