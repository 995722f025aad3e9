extension Schema {
    /// Version 8: `gallra.erase_consent`, the one way past the consent registry's append-only trigger. A batch calls
    /// it for its subjects, in its own transaction, so that the registry stops naming them once their data is gone;
    /// the audit record of each subject counts the events removed.
    ///
    /// `SECURITY DEFINER` (the trigger lets only the table's owner delete) with `search_path` pinned to
    /// `pg_catalog, pg_temp`. Nobody but its owner may call it: not `PUBLIC`, and never `gallra_app`.
    static let migration8 = Migration(
        version: 8,
        description: "erase_consent: gallra's erasure removes a subject's consent events",
        statements: [
            // Events name the subject table as the policy that recorded them spells it ('shop.customer',
            // 'shop."customer"'): the given spelling and every spelling a stored policy version uses for the same
            // table are looked up first, so that the DELETE compares whole values and probes the unique index on
            // (subject_table, subject_key, ...). Events of every policy of the table go: a grant left behind would
            // let another policy go on collecting for a subject whose data is erased.
            """
            CREATE FUNCTION gallra.erase_consent(subject_table text, subject_keys text[])
            RETURNS TABLE (subject_key text, events bigint)
            LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            DECLARE
                v_named     text[];
                v_spellings text[];
            BEGIN
                IF $1 IS NULL OR $2 IS NULL THEN
                    RAISE EXCEPTION 'gallra.erase_consent needs a subject table and an array of keys'
                        USING ERRCODE = 'null_value_not_allowed';
                END IF;
                v_named := pg_catalog.parse_ident($1);
                SELECT pg_catalog.array_agg(t.spelling) INTO v_spellings
                FROM (
                    SELECT $1 AS spelling
                    UNION
                    SELECT p.definition->'subject'->>'table' FROM gallra.policy AS p
                    WHERE pg_catalog.parse_ident(p.definition->'subject'->>'table') = v_named
                ) AS t;
                IF pg_catalog.cardinality($2) = 0 THEN
                    RETURN;
                END IF;

                PERFORM pg_catalog.set_config('gallra.erasure', 'on', true);
                RETURN QUERY
                    WITH gone AS (
                        DELETE FROM gallra.consent_event AS e
                        WHERE e.subject_table = ANY (v_spellings) AND e.subject_key = ANY ($2)
                        RETURNING e.subject_key
                    )
                    SELECT g.subject_key::text, pg_catalog.count(*) FROM gone AS g GROUP BY g.subject_key;
                PERFORM pg_catalog.set_config('gallra.erasure', 'off', true);
            END
            $$
            """,
            """
            COMMENT ON FUNCTION gallra.erase_consent(text, text[]) IS
                'gallra''s erasure: deletes the consent events, under every policy, of the given keys of the subject '
                'table (in any spelling PostgreSQL reads as the same name), and returns how many per key (keys '
                'without events are left out). Called by each batch of a live run for its subjects, in the batch''s '
                'transaction.'
            """,
            "REVOKE ALL ON FUNCTION gallra.erase_consent(text, text[]) FROM PUBLIC",
        ])
}
