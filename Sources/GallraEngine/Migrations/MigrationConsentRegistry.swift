extension Schema {
    /// Version 7: the consent registry (append-only consent events, the consent in force) and the SQL functions
    /// the shop's own code calls to record and check consent, executable by the role `gallra_app`.
    ///
    /// The functions run as the role that migrated (`SECURITY DEFINER`) with `search_path` pinned to
    /// `pg_catalog, pg_temp`, so every name in them is schema-qualified and a caller cannot put a table or operator
    /// of its own in their way. `gallra_app` gets `USAGE` on the schema and `EXECUTE` on the four functions, and
    /// nothing else: it cannot read or write any table of gallra's. Their refusals use SQLSTATEs of class `GC`
    /// (`GallraPostgres.SQLState`); docs/consent.md lists them.
    static let migration7 = Migration(
        version: 7,
        description: "consent_event (append-only), consent_in_force, role gallra_app and the consent functions",
        statements: [
            // Roles belong to the cluster, not to the database: another database's migration may have made it.
            """
            DO $$
            BEGIN
                IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'gallra_app') THEN
                    BEGIN
                        CREATE ROLE gallra_app NOLOGIN;
                    EXCEPTION
                        WHEN duplicate_object OR unique_violation THEN
                            NULL;  -- a concurrent migration of another database created it
                        WHEN insufficient_privilege THEN
                            RAISE EXCEPTION 'gallra migrate needs the role gallra_app, and % may not create roles',
                                current_user
                                USING ERRCODE = 'insufficient_privilege',
                                      HINT = 'As a superuser, run CREATE ROLE gallra_app NOLOGIN; (once per '
                                          'cluster), then gallra migrate again.';
                    END;
                END IF;
            END
            $$
            """,

            """
            CREATE TABLE gallra.consent_event (
                id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                subject_table  text COLLATE "C" NOT NULL,
                subject_key    text COLLATE "C" NOT NULL,
                policy         text COLLATE "C" NOT NULL,
                ordinal        integer NOT NULL CONSTRAINT consent_event_ordinal_positive CHECK (ordinal > 0),
                policy_version integer NOT NULL,
                event          text NOT NULL
                               CONSTRAINT consent_event_event_known CHECK (event IN ('granted', 'revoked')),
                recorded_at    timestamptz NOT NULL DEFAULT now(),
                recorded_by    text NOT NULL DEFAULT session_user,
                source         text CONSTRAINT consent_event_source_is_word
                               CHECK (source ~ '^[a-z][a-z0-9_-]{0,31}$'),
                evidence       text CONSTRAINT consent_event_evidence_at_most_1kb
                               CHECK (octet_length(evidence) BETWEEN 1 AND 1024),
                -- No foreign key to gallra.policy: it would make TRUNCATE of that table fail before its own trigger
                -- says why. The functions take the version from gallra.policy_latest, whose rows are never removed.
                -- One history per subject and policy, numbered without gaps: two transactions that both read event
                -- n as the latest cannot both append n + 1, at any isolation level.
                CONSTRAINT consent_event_one_history UNIQUE (subject_table, subject_key, policy, ordinal)
            )
            """,
            """
            COMMENT ON TABLE gallra.consent_event IS
                'Consent events: a subject granted or revoked consent to a policy. Append-only (a trigger refuses '
                'UPDATE, TRUNCATE and DELETE but by gallra''s erasure); written by gallra.grant_consent and '
                'gallra.revoke_consent. The latest event per subject and policy decides (view gallra.consent_in_force).'
            """,
            "COMMENT ON COLUMN gallra.consent_event.id IS 'The event''s number, in the order events were recorded.'",
            """
            COMMENT ON COLUMN gallra.consent_event.subject_table IS
                'The subject table, schema-qualified, as the policy names it (definition->''subject''->>''table'').'
            """,
            """
            COMMENT ON COLUMN gallra.consent_event.subject_key IS
                'The subject''s key as text, as PostgreSQL prints the key column''s value (42, not 042).'
            """,
            "COMMENT ON COLUMN gallra.consent_event.policy IS 'The policy the consent is for (gallra.policy.name).'",
            """
            COMMENT ON COLUMN gallra.consent_event.ordinal IS
                'The event''s place in the history of its subject and policy: 1, 2, 3, ... without gaps.'
            """,
            """
            COMMENT ON COLUMN gallra.consent_event.policy_version IS
                'The policy''s latest version when the event was recorded: for a grant, the terms accepted.'
            """,
            "COMMENT ON COLUMN gallra.consent_event.event IS 'granted or revoked.'",
            "COMMENT ON COLUMN gallra.consent_event.recorded_at IS 'When the event was recorded.'",
            """
            COMMENT ON COLUMN gallra.consent_event.recorded_by IS
                'The database role whose session recorded it (session_user: the shop''s login role).'
            """,
            """
            COMMENT ON COLUMN gallra.consent_event.source IS
                'Where consent was given or withdrawn (web, store, club, app, ...): a-z, 0-9, _ and -, at most 32.'
            """,
            """
            COMMENT ON COLUMN gallra.consent_event.evidence IS
                'Optional proof (a form version, a ticket number), at most 1024 bytes; null when none was given.'
            """,

            // The one way to remove events is gallra's erasure of a subject, which runs as the role that owns the
            // table and says so with `SET LOCAL gallra.erasure = on`. gallra_app never gets there: it holds no
            // privilege on the table (so the server refuses its DELETE before any trigger), and it is never the
            // owner; the only code it can run as the owner are the consent functions, which never delete and
            // resolve every name in pg_catalog. The setting alone is not enough, so the owner's own slip (a
            // DELETE without it) is refused too.
            """
            CREATE FUNCTION gallra.consent_event_is_append_only() RETURNS trigger
            LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
            BEGIN
                IF TG_OP = 'DELETE' AND current_setting('gallra.erasure', true) = 'on'
                   AND current_user = (SELECT pg_get_userbyid(c.relowner) FROM pg_class AS c WHERE c.oid = TG_RELID)
                THEN
                    RETURN NULL;
                END IF;
                RAISE EXCEPTION 'gallra.consent_event is append-only: % refused', TG_OP
                    USING ERRCODE = 'restrict_violation',
                          HINT = 'Record a new event with gallra.grant_consent or gallra.revoke_consent; a '
                              'subject''s events are removed only by gallra''s erasure.';
            END
            $$
            """,
            """
            COMMENT ON FUNCTION gallra.consent_event_is_append_only() IS
                'Refuses UPDATE, TRUNCATE and DELETE of consent events, but a DELETE by the table''s owner with '
                'gallra.erasure set to on (gallra''s erasure of a subject).'
            """,
            """
            CREATE TRIGGER consent_event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON gallra.consent_event
                FOR EACH STATEMENT EXECUTE FUNCTION gallra.consent_event_is_append_only()
            """,

            """
            CREATE VIEW gallra.consent_in_force AS
                SELECT latest.subject_table, latest.subject_key, latest.policy, latest.policy_version,
                       latest.recorded_at AS granted_at, latest.source, latest.id AS event_id
                FROM (
                    SELECT DISTINCT ON (e.subject_table, e.subject_key, e.policy) e.*
                    FROM gallra.consent_event AS e
                    ORDER BY e.subject_table, e.subject_key, e.policy, e.ordinal DESC
                ) AS latest
                WHERE latest.event = 'granted'
            """,
            """
            COMMENT ON VIEW gallra.consent_in_force IS
                'The consent in force: per subject and policy whose latest event is a grant, that grant.'
            """,
            "COMMENT ON COLUMN gallra.consent_in_force.subject_table IS 'The subject table, as the policy names it.'",
            "COMMENT ON COLUMN gallra.consent_in_force.subject_key IS 'The subject''s key as text.'",
            "COMMENT ON COLUMN gallra.consent_in_force.policy IS 'The policy consented to.'",
            "COMMENT ON COLUMN gallra.consent_in_force.policy_version IS 'The version whose terms were accepted.'",
            "COMMENT ON COLUMN gallra.consent_in_force.granted_at IS 'When consent was granted.'",
            "COMMENT ON COLUMN gallra.consent_in_force.source IS 'Where it was granted.'",
            "COMMENT ON COLUMN gallra.consent_in_force.event_id IS 'The grant (gallra.consent_event.id).'",

            // The checks every function shares. They run as the definer of the function that calls them.
            """
            CREATE FUNCTION gallra.consent_arguments(p_subject_table text, p_subject_key text) RETURNS text[]
            LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
            BEGIN
                IF p_subject_table IS NULL OR p_subject_table = '' THEN
                    RAISE EXCEPTION 'subject_table is missing'
                        USING ERRCODE = 'GC005', HINT = 'Pass the subject table as the policy names it: schema.table.';
                END IF;
                IF p_subject_key IS NULL OR p_subject_key = '' THEN
                    RAISE EXCEPTION 'subject_key is missing'
                        USING ERRCODE = 'GC005', HINT = 'Pass the subject''s key as text, e.g. 42.';
                END IF;
                RETURN pg_catalog.parse_ident(p_subject_table);
            EXCEPTION WHEN invalid_parameter_value THEN
                RAISE EXCEPTION 'subject_table is not a table name'
                    USING ERRCODE = 'GC005', HINT = 'Write it as schema.table, as the policy names it.';
            END
            $$
            """,
            """
            COMMENT ON FUNCTION gallra.consent_arguments(text, text) IS
                'Refuses a missing subject table or key (GC005); returns the subject table''s parts (parse_ident).'
            """,
            """
            CREATE FUNCTION gallra.consent_target(
                p_use text, p_subject_table text, p_subject_key text, p_policy text,
                OUT policy_version integer, OUT subject_table text, OUT subject_key text
            )
            LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
            DECLARE
                v_policy  record;
                v_given   text[];
                v_named   text[];
                v_table   regclass;
                v_column  text;
                v_type    text;
            BEGIN
                v_given := gallra.consent_arguments(p_subject_table, p_subject_key);
                IF p_policy IS NULL OR p_policy = '' THEN
                    RAISE EXCEPTION 'policy is missing'
                        USING ERRCODE = 'GC005', HINT = 'Pass the policy''s name (gallra policy list shows them).';
                END IF;

                SELECT l.version, l.state, l.definition INTO v_policy
                FROM gallra.policy_latest AS l WHERE l.name = p_policy;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'no policy named % is stored', p_policy
                        USING ERRCODE = 'GC001',
                              HINT = 'gallra policy list shows the stored policies; gallra policy apply stores one.';
                END IF;
                subject_table := v_policy.definition->'subject'->>'table';
                v_named := pg_catalog.parse_ident(subject_table);
                IF pg_catalog.cardinality(v_named) <> 2 THEN
                    RAISE EXCEPTION 'policy % names its subject table % without a schema', p_policy, subject_table
                        USING ERRCODE = 'GC008',
                              HINT = 'Name it schema.table in the policy and apply it: the consent functions '
                                  'resolve no name through a search path.';
                END IF;
                IF v_given IS DISTINCT FROM v_named THEN
                    RAISE EXCEPTION 'policy %''s subjects are in %, not %', p_policy, subject_table, p_subject_table
                        USING ERRCODE = 'GC002',
                              HINT = 'Pass the subject table the policy names, or the policy for this table.';
                END IF;
                IF p_use <> 'history' AND v_policy.definition->>'legal_basis' IS DISTINCT FROM 'consent' THEN
                    RAISE EXCEPTION 'policy %''s legal basis is %, not consent', p_policy,
                        coalesce(v_policy.definition->>'legal_basis', 'not stated')
                        USING ERRCODE = 'GC004',
                              HINT = 'Consent is recorded only under a policy with legal_basis: consent; add it to '
                                  'the policy and apply it, or use the policy that asks for consent.';
                END IF;
                IF p_use = 'grant' AND v_policy.state = 'disabled' THEN
                    RAISE EXCEPTION 'policy % is disabled: no consent can be granted to it', p_policy
                        USING ERRCODE = 'GC007',
                              HINT = 'Apply the policy as draft or active first; revoking stays possible.';
                END IF;
                policy_version := v_policy.version;

                -- The key as PostgreSQL prints the key column's value, so that 042 and 42 are one subject.
                v_table := pg_catalog.to_regclass(pg_catalog.format('%I.%I', v_named[1], v_named[2]));
                v_column := (pg_catalog.parse_ident(v_policy.definition->'subject'->>'key'))[1];
                SELECT pg_catalog.format_type(a.atttypid, NULL) INTO v_type
                FROM pg_catalog.pg_attribute AS a
                WHERE a.attrelid = v_table AND a.attname = v_column AND a.attnum > 0 AND NOT a.attisdropped;
                IF v_table IS NULL OR v_type IS NULL THEN
                    RAISE EXCEPTION 'policy %''s subject table % or its key column % does not exist', p_policy,
                        subject_table, v_column
                        USING ERRCODE = 'GC003', HINT = 'gallra policy validate says what changed in the database.';
                END IF;
                BEGIN
                    IF p_use IN ('grant', 'revoke') THEN
                        EXECUTE pg_catalog.format(
                            'SELECT %1$I::text FROM %2$I.%3$I WHERE %1$I = $1::%4$s', v_column, v_named[1],
                            v_named[2], v_type)
                            INTO subject_key USING p_subject_key;
                    ELSE
                        EXECUTE pg_catalog.format('SELECT $1::%s::text', v_type) INTO subject_key USING p_subject_key;
                    END IF;
                EXCEPTION WHEN data_exception THEN
                    subject_key := NULL;
                END;
                IF subject_key IS NULL THEN
                    RAISE EXCEPTION 'no subject of policy % has that key in %', p_policy, subject_table
                        USING ERRCODE = 'GC003', DETAIL = pg_catalog.format('%s = %L', v_column, p_subject_key),
                              HINT = 'Record consent for a subject row that exists, after inserting it.';
                END IF;
            END
            $$
            """,
            """
            COMMENT ON FUNCTION gallra.consent_target(text, text, text, text) IS
                'The checks the consent functions share: the arguments, the policy (known, its subject table, its '
                'legal basis, its state) and the subject; returns the policy''s version and the subject as stored.'
            """,

            """
            CREATE FUNCTION gallra.consent_record(
                p_event text, p_subject_table text, p_subject_key text, p_policy text, p_source text, p_evidence text
            ) RETURNS bigint
            LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
            DECLARE
                v_target record;
                v_last   record;
                v_id     bigint;
            BEGIN
                IF p_source IS NOT NULL AND p_source !~ '^[a-z][a-z0-9_-]{0,31}$' THEN
                    RAISE EXCEPTION 'source is not a short word'
                        USING ERRCODE = 'GC005',
                              HINT = 'Pass a-z, 0-9, _ and - (at most 32, starting with a letter), e.g. web, store, '
                                  'club, app; or leave it out.';
                END IF;
                IF p_evidence = '' THEN
                    RAISE EXCEPTION 'evidence is empty'
                        USING ERRCODE = 'GC005', HINT = 'Leave evidence out (null) when there is none.';
                END IF;
                IF pg_catalog.octet_length(p_evidence) > 1024 THEN
                    RAISE EXCEPTION 'evidence is % bytes, more than 1024', pg_catalog.octet_length(p_evidence)
                        USING ERRCODE = 'GC006',
                              HINT = 'Keep evidence short (a form version, a ticket number) and store documents '
                                  'elsewhere, referring to them.';
                END IF;
                SELECT * INTO v_target FROM gallra.consent_target(
                    CASE p_event WHEN 'granted' THEN 'grant' ELSE 'revoke' END, p_subject_table, p_subject_key,
                    p_policy);

                -- Grants and revokes of one subject and policy take turns: the second waits for the first to commit
                -- and, in READ COMMITTED, then reads its event.
                PERFORM pg_catalog.pg_advisory_xact_lock(
                    1734437987, pg_catalog.hashtext(v_target.subject_table || ' ' || v_target.subject_key || ' '
                        || p_policy));
                SELECT e.id, e.ordinal, e.event, e.policy_version INTO v_last
                FROM gallra.consent_event AS e
                WHERE e.subject_table = v_target.subject_table AND e.subject_key = v_target.subject_key
                  AND e.policy = p_policy
                ORDER BY e.ordinal DESC LIMIT 1;
                IF FOUND AND v_last.event = p_event
                   AND (p_event = 'revoked' OR v_last.policy_version = v_target.policy_version) THEN
                    RETURN v_last.id;
                END IF;
                IF NOT FOUND AND p_event = 'revoked' THEN
                    RETURN NULL;
                END IF;
                BEGIN
                    INSERT INTO gallra.consent_event AS e (
                        subject_table, subject_key, policy, ordinal, policy_version, event, recorded_at, source,
                        evidence)
                    VALUES (
                        v_target.subject_table, v_target.subject_key, p_policy, coalesce(v_last.ordinal, 0) + 1,
                        v_target.policy_version, p_event, pg_catalog.clock_timestamp(), p_source, p_evidence)
                    RETURNING e.id INTO v_id;
                EXCEPTION WHEN unique_violation THEN
                    -- Only under REPEATABLE READ or SERIALIZABLE: the snapshot predates a concurrent event.
                    RAISE EXCEPTION 'consent of this subject to policy % changed in a concurrent transaction', p_policy
                        USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
                END;
                RETURN v_id;
            END
            $$
            """,
            """
            COMMENT ON FUNCTION gallra.consent_record(text, text, text, text, text, text) IS
                'Appends a grant or revoke unless it is already in force; returns the event in force. Serialised per '
                'subject and policy by a transaction-level advisory lock.'
            """,

            """
            CREATE FUNCTION gallra.grant_consent(
                subject_table text, subject_key text, policy text, source text DEFAULT NULL,
                evidence text DEFAULT NULL
            ) RETURNS bigint
            LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $$ SELECT gallra.consent_record('granted', $1, $2, $3, $4, $5) $$
            """,
            """
            COMMENT ON FUNCTION gallra.grant_consent(text, text, text, text, text) IS
                'Records that the subject accepted the terms of the policy''s latest version; returns the grant''s '
                'id. Granting again while that grant is in force records nothing and returns the same id.'
            """,
            """
            CREATE FUNCTION gallra.revoke_consent(
                subject_table text, subject_key text, policy text, source text DEFAULT NULL,
                evidence text DEFAULT NULL
            ) RETURNS bigint
            LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
            AS $$ SELECT gallra.consent_record('revoked', $1, $2, $3, $4, $5) $$
            """,
            """
            COMMENT ON FUNCTION gallra.revoke_consent(text, text, text, text, text) IS
                'Records that the subject withdrew consent to the policy; returns the revocation''s id. Revoking '
                'when no consent is in force records nothing and returns the last revocation''s id, or null.'
            """,
            """
            CREATE FUNCTION gallra.has_consent(subject_table text, subject_key text, policy text) RETURNS boolean
            LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            DECLARE
                v_target record;
            BEGIN
                SELECT * INTO v_target FROM gallra.consent_target('check', $1, $2, $3);
                RETURN coalesce((
                    SELECT e.event = 'granted' FROM gallra.consent_event AS e
                    WHERE e.subject_table = v_target.subject_table AND e.subject_key = v_target.subject_key
                      AND e.policy = $3
                    ORDER BY e.ordinal DESC LIMIT 1), false);
            END
            $$
            """,
            """
            COMMENT ON FUNCTION gallra.has_consent(text, text, text) IS
                'Whether the subject''s consent to the policy is in force: its latest event is a grant (of any '
                'version of the policy).'
            """,
            """
            CREATE FUNCTION gallra.consent_history(subject_table text, subject_key text, policy text DEFAULT NULL)
            RETURNS TABLE (
                event text, policy_name text, policy_version integer, recorded_at timestamptz, source text,
                evidence text, recorded_by text
            )
            LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            DECLARE
                v_names   text[] := '{}';
                v_tables  text[] := '{}';
                v_keys    text[] := '{}';
                v_name    text;
                v_given   text[];
                v_matched boolean := false;
                v_target  record;
            BEGIN
                IF $3 IS NOT NULL THEN
                    SELECT * INTO v_target FROM gallra.consent_target('history', $1, $2, $3);
                    v_names := ARRAY[$3];
                    v_tables := ARRAY[v_target.subject_table];
                    v_keys := ARRAY[v_target.subject_key];
                ELSE
                    -- Every policy whose subject table is this one; the key is read by each policy's key column.
                    v_given := gallra.consent_arguments($1, $2);
                    FOR v_name IN
                        SELECT l.name FROM gallra.policy_latest AS l
                        WHERE pg_catalog.parse_ident(l.definition->'subject'->>'table') = v_given
                        ORDER BY l.name
                    LOOP
                        v_matched := true;
                        BEGIN
                            SELECT * INTO v_target FROM gallra.consent_target('history', $1, $2, v_name);
                        EXCEPTION WHEN SQLSTATE 'GC003' THEN
                            CONTINUE;  -- a key this policy's key column cannot hold: no events under it
                        END;
                        v_names := v_names || v_name;
                        v_tables := v_tables || v_target.subject_table;
                        v_keys := v_keys || v_target.subject_key;
                    END LOOP;
                    IF NOT v_matched THEN
                        RAISE EXCEPTION 'no policy has its subjects in %', $1
                            USING ERRCODE = 'GC002',
                                  HINT = 'Name the subject table as the policies do (schema.table); gallra policy '
                                      'list shows them.';
                    END IF;
                END IF;
                RETURN QUERY
                    SELECT e.event, e.policy::text, e.policy_version, e.recorded_at, e.source, e.evidence,
                           e.recorded_by
                    FROM gallra.consent_event AS e
                    JOIN ROWS FROM (
                        pg_catalog.unnest(v_names), pg_catalog.unnest(v_tables), pg_catalog.unnest(v_keys)
                    ) AS w (policy, subject_table, subject_key)
                      ON e.policy = w.policy AND e.subject_table = w.subject_table AND e.subject_key = w.subject_key
                    ORDER BY e.id;
            END
            $$
            """,
            """
            COMMENT ON FUNCTION gallra.consent_history(text, text, text) IS
                'The subject''s consent events in the order recorded, for one policy or (null) every policy whose '
                'subject table it is.'
            """,

            // Only the four functions are gallra_app's; the trigger functions and helpers are nobody's to call.
            "REVOKE ALL ON ALL FUNCTIONS IN SCHEMA gallra FROM PUBLIC",
            "GRANT USAGE ON SCHEMA gallra TO gallra_app",
            """
            GRANT EXECUTE ON FUNCTION gallra.grant_consent(text, text, text, text, text),
                gallra.revoke_consent(text, text, text, text, text), gallra.has_consent(text, text, text),
                gallra.consent_history(text, text, text)
                TO gallra_app
            """,
        ])
}
