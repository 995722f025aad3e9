extension Schema {
    /// Version 9: the consent guards of `collect: with_consent` (`ConsentGuards`).
    ///
    /// A guard is a trigger function in gallra's schema and two row triggers on the shop's table that call it; the
    /// table `gallra.consent_guard` says which policy each guard belongs to, so that applying or disabling the policy
    /// can replace or remove them in its own transaction. Dropping the function drops its triggers wherever the
    /// table has moved; a guarded table that is dropped takes its triggers with it, and `gallra policy show` then
    /// reports the guard as missing.
    static let migration9 = Migration(
        version: 9,
        description: "consent_guard: the triggers of collect: with_consent",
        statements: [
            """
            CREATE TABLE gallra.consent_guard (
                function_name  text PRIMARY KEY
                               CONSTRAINT consent_guard_function_name_form
                               CHECK (function_name ~ '^consent_guard_[0-9a-f]{16}$'),
                policy         text NOT NULL,
                policy_version integer NOT NULL,
                guarded_table  text NOT NULL,
                columns        text[] NOT NULL,
                digest         text NOT NULL CONSTRAINT consent_guard_digest_is_sha256_hex
                               CHECK (digest ~ '^[0-9a-f]{64}$'),
                installed_at   timestamptz NOT NULL DEFAULT now(),
                installed_by   text NOT NULL DEFAULT current_user,
                CONSTRAINT consent_guard_one_per_link UNIQUE (policy, guarded_table, columns)
            )
            """,
            """
            COMMENT ON TABLE gallra.consent_guard IS
                'The consent guards installed for policies with collect: with_consent: per policy and link of a guarded '
                'table to the subject, '
                'the trigger function gallra.<function_name>() and its triggers <function_name>_insert and '
                '_update. Written by gallra policy apply and disable; do not edit by hand.'
            """,
            """
            COMMENT ON COLUMN gallra.consent_guard.function_name IS
                'The trigger function in schema gallra; its triggers are named gallra_ followed by this name and '
                '_insert or _update.'
            """,
            "COMMENT ON COLUMN gallra.consent_guard.policy IS 'The policy whose consent the guard checks.'",
            "COMMENT ON COLUMN gallra.consent_guard.policy_version IS 'The policy version that installed it.'",
            """
            COMMENT ON COLUMN gallra.consent_guard.guarded_table IS
                'The guarded table, schema-qualified, as SQL writes it.'
            """,
            "COMMENT ON COLUMN gallra.consent_guard.columns IS 'The guarded table''s columns that link to the subject.'",
            """
            COMMENT ON COLUMN gallra.consent_guard.digest IS
                'SHA-256 of the SQL that installed the guard: an apply that would install the same leaves it alone.'
            """,
            "COMMENT ON COLUMN gallra.consent_guard.installed_at IS 'When the guard was installed.'",
            "COMMENT ON COLUMN gallra.consent_guard.installed_by IS 'The database role that installed it.'",
        ])
}
