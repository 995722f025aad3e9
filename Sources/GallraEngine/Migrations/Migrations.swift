// The migrations of gallra's schema, in version order. A migration, once released, is never edited: a change is
// a new migration appended to `Schema.migrations` (runs and the audit trail come as migration 2).

extension Schema {
    /// Version 1: the schema, its version table, and the policy store (every version of every policy, immutable).
    static let migration1 = Migration(
        version: 1,
        description: "schema gallra, schema_version, policy (immutable versions), policy_latest",
        statements: [
            "CREATE SCHEMA IF NOT EXISTS gallra",
            """
            COMMENT ON SCHEMA gallra IS
                'gallra, the retention and purge daemon: its policies, runs and audit trail. Created and upgraded by '
                'gallra migrate; do not edit by hand.'
            """,

            """
            CREATE TABLE gallra.schema_version (
                version     integer PRIMARY KEY CHECK (version > 0),
                description text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                applied_by  text NOT NULL DEFAULT current_user
            )
            """,
            "COMMENT ON TABLE gallra.schema_version IS 'The migrations of the gallra schema applied to this database.'",
            """
            COMMENT ON COLUMN gallra.schema_version.version IS
                'Migration number; the highest is the schema version. A gallra that knows fewer refuses the database.'
            """,
            "COMMENT ON COLUMN gallra.schema_version.description IS 'What the migration did.'",
            "COMMENT ON COLUMN gallra.schema_version.applied_at IS 'When it was applied.'",
            "COMMENT ON COLUMN gallra.schema_version.applied_by IS 'Who applied it (the database role, unless gallra said).'",

            """
            CREATE TABLE gallra.policy (
                name       text NOT NULL
                           CONSTRAINT policy_name_is_slug CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
                version    integer NOT NULL CONSTRAINT policy_version_positive CHECK (version > 0),
                state      text NOT NULL
                           CONSTRAINT policy_state_known CHECK (state IN ('draft', 'active', 'disabled')),
                definition jsonb NOT NULL
                           CONSTRAINT policy_definition_is_object CHECK (jsonb_typeof(definition) = 'object'),
                digest     text NOT NULL CONSTRAINT policy_digest_is_sha256_hex CHECK (digest ~ '^[0-9a-f]{64}$'),
                source     text NOT NULL DEFAULT 'database',
                applied_at timestamptz NOT NULL DEFAULT now(),
                applied_by text NOT NULL DEFAULT current_user,
                PRIMARY KEY (name, version),
                -- The columns repeat what the document says, for queries; they may not contradict it.
                CONSTRAINT policy_name_matches_definition CHECK (definition->>'policy' = name),
                CONSTRAINT policy_state_matches_definition CHECK (definition->>'state' = state)
            )
            """,
            """
            COMMENT ON TABLE gallra.policy IS
                'Every version of every retention policy. Rows are immutable (a trigger refuses UPDATE, DELETE and '
                'TRUNCATE): a change is a new version. The latest version of a name is the one in force '
                '(view gallra.policy_latest).'
            """,
            """
            COMMENT ON COLUMN gallra.policy.name IS
                'The policy name (policy: in the file): a-z, 0-9, - and _, starting with a letter or digit, at most '
                '63 characters.'
            """,
            "COMMENT ON COLUMN gallra.policy.version IS 'Version of this name: 1 for the first, then +1 per change.'",
            """
            COMMENT ON COLUMN gallra.policy.state IS
                'draft (dry runs only), active (live runs act on it) or disabled; the same as definition->>''state''.'
            """,
            """
            COMMENT ON COLUMN gallra.policy.definition IS
                'The policy document in its canonical JSON form (the policy file''s shape, every default spelt out).'
            """,
            """
            COMMENT ON COLUMN gallra.policy.digest IS
                'SHA-256 (hex) of the canonical JSON text of the definition. gallra checks it when loading; a row '
                'whose digest does not match is reported and skipped.'
            """,
            """
            COMMENT ON COLUMN gallra.policy.source IS
                'Where the version came from: the policy file path given to gallra policy apply, or ''database''.'
            """,
            "COMMENT ON COLUMN gallra.policy.applied_at IS 'When the version was stored.'",
            "COMMENT ON COLUMN gallra.policy.applied_by IS 'Who stored it (the database role, unless gallra said).'",

            """
            CREATE FUNCTION gallra.policy_is_immutable() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_LEVEL = 'ROW' THEN
                    RAISE EXCEPTION 'gallra.policy is immutable: % of policy % version % refused', TG_OP, OLD.name,
                        OLD.version
                        USING ERRCODE = 'restrict_violation',
                              HINT = 'Store a new version instead (gallra policy apply, gallra policy disable).';
                END IF;
                RAISE EXCEPTION 'gallra.policy is immutable: % refused', TG_OP
                    USING ERRCODE = 'restrict_violation',
                          HINT = 'Store a new version instead (gallra policy apply, gallra policy disable).';
            END
            $$
            """,
            """
            COMMENT ON FUNCTION gallra.policy_is_immutable() IS
                'Trigger function refusing UPDATE, DELETE and TRUNCATE on gallra.policy: the history is kept whole.'
            """,
            """
            CREATE TRIGGER policy_rows_are_immutable BEFORE UPDATE OR DELETE ON gallra.policy
                FOR EACH ROW EXECUTE FUNCTION gallra.policy_is_immutable()
            """,
            """
            CREATE TRIGGER policy_is_not_truncated BEFORE TRUNCATE ON gallra.policy
                FOR EACH STATEMENT EXECUTE FUNCTION gallra.policy_is_immutable()
            """,

            """
            CREATE VIEW gallra.policy_latest AS
                SELECT DISTINCT ON (name) name, version, state, definition, digest, source, applied_at, applied_by
                FROM gallra.policy
                ORDER BY name, version DESC
            """,
            """
            COMMENT ON VIEW gallra.policy_latest IS
                'The latest version of each policy: the one in force (whatever its state).'
            """,
        ])
}
