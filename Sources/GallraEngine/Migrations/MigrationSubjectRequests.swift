extension Schema {
    /// Version 12: erasure requests (the queue the shop and `gallra erase` fill and the daemon empties), legal holds
    /// as records, and the chained record of what people did to one subject outside a run (holds placed and
    /// released, corrections).
    ///
    /// `gallra_app` gets `EXECUTE` on `request_erasure`, `erasure_status` and `cancel_erasure` and nothing else: like
    /// the consent functions they run as the role that migrated (`SECURITY DEFINER`) with `search_path` pinned, and
    /// refuse with SQLSTATEs of class `GC` (docs/requests.md).
    static let migration12 = Migration(
        version: 12,
        description: "erasure_request (the queue), hold (legal holds), audit_event (holds and corrections, chained)",
        statements: [
            """
            CREATE TABLE gallra.erasure_request (
                id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                subject_table  text COLLATE "C" NOT NULL,
                subject_key    text COLLATE "C",
                subject_digest text CONSTRAINT erasure_request_digest_is_hex
                               CHECK (subject_digest ~ '^[0-9a-f]{64}$'),
                reason         text CONSTRAINT erasure_request_reason_at_most_1kb
                               CHECK (octet_length(reason) BETWEEN 1 AND 1024),
                requested_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
                requested_by   text NOT NULL DEFAULT session_user,
                not_before     timestamptz NOT NULL DEFAULT clock_timestamp(),
                status         text NOT NULL DEFAULT 'pending' CONSTRAINT erasure_request_status_known
                               CHECK (status IN ('pending', 'done', 'refused', 'cancelled')),
                decided_at     timestamptz,
                decided_by     text,
                run            uuid,
                counts         jsonb,
                refusal        text,
                attempts       integer NOT NULL DEFAULT 0 CONSTRAINT erasure_request_attempts_counted
                               CHECK (attempts >= 0),
                last_attempt   timestamptz,
                -- A pending request names its subject; a decided one only until gallra replaces the key by its digest.
                CONSTRAINT erasure_request_pending_has_key CHECK (status <> 'pending' OR subject_key IS NOT NULL),
                CONSTRAINT erasure_request_decided_when CHECK ((status = 'pending') = (decided_at IS NULL)),
                CONSTRAINT erasure_request_refused_why CHECK ((status = 'refused') = (refusal IS NOT NULL))
            )
            """,
            """
            COMMENT ON TABLE gallra.erasure_request IS
                'Erasure requests (GDPR Art. 17): one subject to erase under the on-request policies of its table, not '
                'before a time. Filled by gallra.request_erasure and gallra erase, processed by the service within '
                'seconds. Once a request is decided gallra replaces its subject key by the audit digest.'
            """,
            "COMMENT ON COLUMN gallra.erasure_request.id IS 'The request''s number, returned to the requester.'",
            "COMMENT ON COLUMN gallra.erasure_request.subject_table IS 'The subject table, schema-qualified, as the policies name it.'",
            """
            COMMENT ON COLUMN gallra.erasure_request.subject_key IS
                'The subject''s key as text (as PostgreSQL prints the key column''s value) while the request is '
                'pending; null once gallra has replaced it by subject_digest.'
            """,
            """
            COMMENT ON COLUMN gallra.erasure_request.subject_digest IS
                'HMAC-SHA-256 (hex) of TABLE:KEY under the audit key, as in gallra.audit_subject; set when the request '
                'is decided. Never the key.'
            """,
            "COMMENT ON COLUMN gallra.erasure_request.reason IS 'Why the subject is erased, for people (a ticket number); at most 1024 bytes.'",
            "COMMENT ON COLUMN gallra.erasure_request.requested_at IS 'When the request was recorded.'",
            "COMMENT ON COLUMN gallra.erasure_request.requested_by IS 'The database role whose session recorded it (session_user).'",
            """
            COMMENT ON COLUMN gallra.erasure_request.not_before IS
                'The request is not processed before this time: the end of its undo window (gallra erase --after).'
            """,
            "COMMENT ON COLUMN gallra.erasure_request.status IS 'pending, then done, refused or cancelled.'",
            "COMMENT ON COLUMN gallra.erasure_request.decided_at IS 'When it was done, refused or cancelled; null while pending.'",
            "COMMENT ON COLUMN gallra.erasure_request.decided_by IS 'The database role that decided it (gallra''s, or the role that cancelled).'",
            "COMMENT ON COLUMN gallra.erasure_request.run IS 'The run (gallra.run.id) that erased the subject; null otherwise.'",
            """
            COMMENT ON COLUMN gallra.erasure_request.counts IS
                'For a done request, the rows per table and action: [{"table": ..., "action": "delete"|"anonymize", '
                '"rows": n}], summed over the policies that acted, as in the subject''s audit records.'
            """,
            """
            COMMENT ON COLUMN gallra.erasure_request.refusal IS
                'Why a refused request was refused: the legal hold (its id and reason), no on-request policy for the '
                'table, the subject not found, or an exemption of the policy.'
            """,
            "COMMENT ON COLUMN gallra.erasure_request.attempts IS 'How often gallra tried it (a subject row locked by the shop is tried again).'",
            "COMMENT ON COLUMN gallra.erasure_request.last_attempt IS 'When gallra last tried it; null before the first try.'",
            // One pending request per subject: a second request for it is the same request.
            """
            CREATE UNIQUE INDEX erasure_request_one_pending ON gallra.erasure_request (subject_table, subject_key)
                WHERE status = 'pending'
            """,
            "CREATE INDEX erasure_request_due ON gallra.erasure_request (not_before) WHERE status = 'pending'",
            "CREATE INDEX erasure_request_subject_digest ON gallra.erasure_request (subject_digest)",
            """
            CREATE INDEX erasure_request_key_to_digest ON gallra.erasure_request (id)
                WHERE status <> 'pending' AND subject_key IS NOT NULL
            """,

            """
            CREATE TABLE gallra.hold (
                id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                subject_table  text COLLATE "C" NOT NULL,
                subject_key    text COLLATE "C",
                subject_digest text CONSTRAINT hold_digest_is_hex CHECK (subject_digest ~ '^[0-9a-f]{64}$'),
                policy         text COLLATE "C",
                reason         text NOT NULL CONSTRAINT hold_reason_at_most_1kb
                               CHECK (octet_length(reason) BETWEEN 1 AND 1024),
                placed_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
                placed_by      text NOT NULL,
                until          timestamptz,
                released_at    timestamptz,
                released_by    text,
                release_reason text CONSTRAINT hold_release_reason_at_most_1kb
                               CHECK (octet_length(release_reason) BETWEEN 1 AND 1024),
                CONSTRAINT hold_has_subject CHECK (subject_key IS NOT NULL OR subject_digest IS NOT NULL),
                CONSTRAINT hold_in_force_has_key CHECK (released_at IS NOT NULL OR subject_key IS NOT NULL),
                CONSTRAINT hold_release_complete CHECK (
                    (released_at IS NULL) = (released_by IS NULL) AND (released_at IS NULL) = (release_reason IS NULL)),
                CONSTRAINT hold_until_after_placed CHECK (until IS NULL OR until > placed_at)
            )
            """,
            """
            COMMENT ON TABLE gallra.hold IS
                'Legal holds: a stop on one subject (litigation, an open dispute) that every policy, retention or on '
                'request, respects until it is released or its until has passed. Placed and released with gallra hold; '
                'both are recorded in gallra.audit_event.'
            """,
            "COMMENT ON COLUMN gallra.hold.id IS 'The hold''s number (gallra hold release ID).'",
            "COMMENT ON COLUMN gallra.hold.subject_table IS 'The subject table, schema-qualified, as the policies name it.'",
            """
            COMMENT ON COLUMN gallra.hold.subject_key IS
                'The held subject''s key as text while the hold can still stop a policy; null once the subject, '
                'released, was erased and gallra replaced it by subject_digest.'
            """,
            "COMMENT ON COLUMN gallra.hold.subject_digest IS 'HMAC-SHA-256 (hex) of TABLE:KEY under the audit key; null when placed without one.'",
            "COMMENT ON COLUMN gallra.hold.policy IS 'The one policy the hold stops; null: every policy over the table.'",
            "COMMENT ON COLUMN gallra.hold.reason IS 'Why the subject is held (a case number), at most 1024 bytes.'",
            "COMMENT ON COLUMN gallra.hold.placed_at IS 'When the hold was placed.'",
            "COMMENT ON COLUMN gallra.hold.placed_by IS 'Who placed it: the operating-system user and the database role.'",
            "COMMENT ON COLUMN gallra.hold.until IS 'When the hold ends by itself; null: until released.'",
            "COMMENT ON COLUMN gallra.hold.released_at IS 'When it was released; null while in force or until it expires.'",
            "COMMENT ON COLUMN gallra.hold.released_by IS 'Who released it.'",
            "COMMENT ON COLUMN gallra.hold.release_reason IS 'Why it was released.'",
            """
            CREATE INDEX hold_in_force ON gallra.hold (subject_table, subject_key) WHERE released_at IS NULL
            """,
            "CREATE INDEX hold_subject_digest ON gallra.hold (subject_digest)",

            """
            CREATE TABLE gallra.audit_event (
                sequence       bigint PRIMARY KEY CHECK (sequence > 0),
                created_at     timestamptz NOT NULL,
                kind           text NOT NULL CONSTRAINT audit_event_kind_known
                               CHECK (kind IN ('hold_placed', 'hold_released', 'correction')),
                subject_table  text NOT NULL,
                subject_digest text CHECK (subject_digest ~ '^[0-9a-f]{64}$'),
                detail         text NOT NULL,
                database_role  text NOT NULL,
                os_user        text NOT NULL,
                previous_hash  text NOT NULL CHECK (previous_hash ~ '^[0-9a-f]{64}$'),
                hash           text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$')
            )
            """,
            """
            COMMENT ON TABLE gallra.audit_event IS
                'What people did to one subject outside a run: holds placed and released, corrections. Rows are '
                'chained by SHA-256 like the audit blocks; gallra audit verify recomputes the chain and gallra audit '
                'lookup lists a subject''s events. Append-only.'
            """,
            "COMMENT ON COLUMN gallra.audit_event.sequence IS '1, 2, 3, ... without gaps: the order of the chain.'",
            "COMMENT ON COLUMN gallra.audit_event.created_at IS 'When it happened.'",
            "COMMENT ON COLUMN gallra.audit_event.kind IS 'hold_placed, hold_released or correction.'",
            "COMMENT ON COLUMN gallra.audit_event.subject_table IS 'The subject table, schema-qualified.'",
            """
            COMMENT ON COLUMN gallra.audit_event.subject_digest IS
                'HMAC-SHA-256 (hex) of TABLE:KEY under the audit key; null when done without an audit key. Never the key.'
            """,
            """
            COMMENT ON COLUMN gallra.audit_event.detail IS
                'A JSON object: for a hold its id, policy, reason and until; for a correction the tables, columns and '
                'rows changed, never the values.'
            """,
            "COMMENT ON COLUMN gallra.audit_event.database_role IS 'The database role that did it (current_user).'",
            "COMMENT ON COLUMN gallra.audit_event.os_user IS 'The operating-system user that ran gallra.'",
            "COMMENT ON COLUMN gallra.audit_event.previous_hash IS 'The hash of the previous event (64 zeros for the first).'",
            "COMMENT ON COLUMN gallra.audit_event.hash IS 'SHA-256 over this event''s fields and previous_hash.'",
            "CREATE INDEX audit_event_subject_digest ON gallra.audit_event (subject_digest)",
            """
            CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON gallra.audit_event
                FOR EACH STATEMENT EXECUTE FUNCTION gallra.audit_is_append_only()
            """,

            // The shop's SQL interface to the queue.
            """
            CREATE FUNCTION gallra.request_erasure(
                subject_table text, subject_key text, reason text DEFAULT NULL, after interval DEFAULT NULL
            ) RETURNS bigint
            LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            #variable_conflict use_column
            DECLARE
                v_given  text[];
                v_named  text[];
                v_table  text;
                v_column text;
                v_type   text;
                v_key    text;
                v_id     bigint;
            BEGIN
                v_given := gallra.consent_arguments($1, $2);
                IF pg_catalog.cardinality(v_given) <> 2 THEN
                    RAISE EXCEPTION 'subject_table % is not schema-qualified', $1
                        USING ERRCODE = 'GC005', HINT = 'Write it as schema.table, as the policies name it.';
                END IF;
                IF $3 = '' THEN
                    RAISE EXCEPTION 'reason is empty'
                        USING ERRCODE = 'GC005', HINT = 'Leave reason out (null) when there is none.';
                END IF;
                IF pg_catalog.octet_length($3) > 1024 THEN
                    RAISE EXCEPTION 'reason is % bytes, more than 1024', pg_catalog.octet_length($3)
                        USING ERRCODE = 'GC006', HINT = 'Keep the reason short (a ticket number).';
                END IF;
                IF $4 IS NOT NULL AND $4 < interval '0' THEN
                    RAISE EXCEPTION 'after is negative'
                        USING ERRCODE = 'GC005', HINT = 'Pass the undo window, e.g. interval ''24 hours'', or null.';
                END IF;
                -- The table as the policies name it, and its key column's type, to store the key as PostgreSQL prints
                -- it (042 and 42 are one subject). On-request or not: a table no policy names is a mistake.
                SELECT l.definition->'subject'->>'table', l.definition->'subject'->>'key'
                INTO v_table, v_column
                FROM gallra.policy_latest AS l
                WHERE pg_catalog.parse_ident(l.definition->'subject'->>'table') = v_given
                ORDER BY (l.definition->'expires' ? 'on_request') DESC, l.name
                LIMIT 1;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'no policy has its subjects in %', $1
                        USING ERRCODE = 'GC002',
                              HINT = 'Name the subject table as the policies do (schema.table); gallra policy list '
                                  'shows them.';
                END IF;
                v_named := pg_catalog.parse_ident(v_table);
                SELECT pg_catalog.format_type(a.atttypid, NULL) INTO v_type
                FROM pg_catalog.pg_attribute AS a
                WHERE a.attrelid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', v_named[1], v_named[2]))
                  AND a.attname = (pg_catalog.parse_ident(v_column))[1] AND a.attnum > 0 AND NOT a.attisdropped;
                IF v_type IS NULL THEN
                    RAISE EXCEPTION 'the subject table % or its key column % does not exist', v_table, v_column
                        USING ERRCODE = 'GC003', HINT = 'gallra policy validate says what changed in the database.';
                END IF;
                BEGIN
                    EXECUTE pg_catalog.format('SELECT $1::%s::text', v_type) INTO v_key USING $2;
                EXCEPTION WHEN data_exception THEN
                    RAISE EXCEPTION 'subject_key is not a value of %''s key column (%)', v_table, v_type
                        USING ERRCODE = 'GC003', HINT = 'Pass the subject''s key as the key column holds it, e.g. 42.';
                END;
                -- One pending request per subject: a second request is the first one, due at the earlier time.
                INSERT INTO gallra.erasure_request AS r (subject_table, subject_key, reason, not_before)
                VALUES (v_table, v_key, $3, pg_catalog.clock_timestamp() + coalesce($4, interval '0'))
                ON CONFLICT (subject_table, subject_key) WHERE status = 'pending'
                DO UPDATE SET not_before = LEAST(r.not_before, EXCLUDED.not_before)
                RETURNING r.id INTO v_id;
                PERFORM pg_catalog.pg_notify('gallra_erasure', v_id::text);
                RETURN v_id;
            END
            $$
            """,
            """
            COMMENT ON FUNCTION gallra.request_erasure(text, text, text, interval) IS
                'Records a request to erase the subject under the on-request policies of its table, not before the '
                'undo window (after) has passed, and wakes the service; returns the request''s id. A subject with a '
                'pending request keeps that one request (due at the earlier of the two times).'
            """,
            """
            CREATE FUNCTION gallra.erasure_status(id bigint)
            RETURNS TABLE (
                status text, subject_table text, subject_key text, reason text, requested_at timestamptz,
                requested_by text, not_before timestamptz, decided_at timestamptz, run uuid, counts jsonb,
                refusal text, attempts integer
            )
            LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            #variable_conflict use_column
            BEGIN
                RETURN QUERY
                    SELECT r.status, r.subject_table::text, r.subject_key::text, r.reason, r.requested_at,
                           r.requested_by, r.not_before, r.decided_at, r.run, r.counts, r.refusal, r.attempts
                    FROM gallra.erasure_request AS r WHERE r.id = $1;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'no erasure request has id %', $1
                        USING ERRCODE = 'GC010', HINT = 'Pass the id gallra.request_erasure returned.';
                END IF;
            END
            $$
            """,
            """
            COMMENT ON FUNCTION gallra.erasure_status(bigint) IS
                'Where an erasure request stands: pending, done (with the run and the rows per table and action), '
                'refused (with why) or cancelled.'
            """,
            """
            CREATE FUNCTION gallra.cancel_erasure(id bigint) RETURNS text
            LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            #variable_conflict use_column
            DECLARE
                v_status text;
            BEGIN
                -- Waits for a batch that is erasing the subject under this request, then reads its outcome.
                SELECT r.status INTO v_status FROM gallra.erasure_request AS r WHERE r.id = $1 FOR UPDATE;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'no erasure request has id %', $1
                        USING ERRCODE = 'GC010', HINT = 'Pass the id gallra.request_erasure returned.';
                END IF;
                IF v_status = 'cancelled' THEN
                    RETURN v_status;
                END IF;
                IF v_status <> 'pending' THEN
                    RAISE EXCEPTION 'erasure request % is %: only a pending request can be cancelled', $1, v_status
                        USING ERRCODE = 'GC011', HINT = 'gallra.erasure_status says what was done.';
                END IF;
                UPDATE gallra.erasure_request AS r
                SET status = 'cancelled', decided_at = pg_catalog.clock_timestamp(), decided_by = session_user
                WHERE r.id = $1;
                RETURN 'cancelled';
            END
            $$
            """,
            """
            COMMENT ON FUNCTION gallra.cancel_erasure(bigint) IS
                'Cancels a pending erasure request (inside its undo window, or while it waits); returns cancelled. A '
                'request already done or refused cannot be cancelled (GC011).'
            """,
            "REVOKE ALL ON FUNCTION gallra.request_erasure(text, text, text, interval) FROM PUBLIC",
            "REVOKE ALL ON FUNCTION gallra.erasure_status(bigint) FROM PUBLIC",
            "REVOKE ALL ON FUNCTION gallra.cancel_erasure(bigint) FROM PUBLIC",
            """
            GRANT EXECUTE ON FUNCTION gallra.request_erasure(text, text, text, interval),
                gallra.erasure_status(bigint), gallra.cancel_erasure(bigint)
                TO gallra_app
            """,
        ])
}
