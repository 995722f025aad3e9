-- gallra demo shop: moves the shop's own consent records into gallra's consent registry.
--
--   psql "$DB" -v ON_ERROR_STOP=1 -f config/demo/consent.sql
--
-- Run after `gallra migrate` and `gallra policy apply config/policies`, as the role that ran them (the
-- owner of gallra.consent_event, which may insert events with their historical times; the functions
-- stamp the current time). Each consent of shop.newsletter_consent (email) becomes the grant (ordinal 1,
-- at given_at) and, when it was withdrawn, the revocation (ordinal 2, at revoked_at) of the customer
-- under the policy revoked-newsletter-consent, at the policy's stored version. A customer the registry
-- already has a history for is left alone, so running it again records nothing new.
-- docs/consent.md ("Moving from your own consent table") describes the same import for any shop.

\set QUIET on
\set ON_ERROR_STOP on

BEGIN;

-- Nobody records consent through the functions while the histories are written.
LOCK TABLE gallra.consent_event IN SHARE ROW EXCLUSIVE MODE;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM gallra.policy_latest
                   WHERE name = 'revoked-newsletter-consent' AND definition->>'legal_basis' = 'consent') THEN
        RAISE EXCEPTION 'no policy revoked-newsletter-consent with legal_basis: consent is stored'
            USING HINT = 'Run gallra migrate and gallra policy apply config/policies first.';
    END IF;
END
$$;

INSERT INTO gallra.consent_event
    (subject_table, subject_key, policy, ordinal, policy_version, event, recorded_at, source)
SELECT p.definition->'subject'->>'table', c.customer_id::text, p.name, e.ordinal, p.version, e.event, e.at, 'web'
FROM shop.newsletter_consent AS c
CROSS JOIN LATERAL (VALUES (1, 'granted', c.given_at), (2, 'revoked', c.revoked_at)) AS e (ordinal, event, at)
JOIN gallra.policy_latest AS p ON p.name = 'revoked-newsletter-consent'
WHERE c.channel = 'email' AND e.at IS NOT NULL
  AND NOT EXISTS (SELECT FROM gallra.consent_event AS x
                  WHERE x.subject_table = p.definition->'subject'->>'table'
                    AND x.subject_key = c.customer_id::text AND x.policy = p.name)
ORDER BY e.at, c.customer_id, e.ordinal;

SELECT count(*) FILTER (WHERE event = 'granted') AS granted, count(*) FILTER (WHERE event = 'revoked') AS revoked
FROM gallra.consent_event WHERE policy = 'revoked-newsletter-consent' \gset
COMMIT;

\echo 'gallra demo shop: consent registry holds' :granted 'grants and' :revoked 'revocations of revoked-newsletter-consent'
