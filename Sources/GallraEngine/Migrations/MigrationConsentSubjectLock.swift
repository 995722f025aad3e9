extension Schema {
    /// Version 10: a grant or revocation locks the subject's row (`FOR KEY SHARE`) while it records the event.
    ///
    /// Without the lock, a grant could check the subject just before a live batch deletes it and commit its event
    /// after the batch erased the subject's events: an event naming an erased subject in clear. With it, a batch
    /// skips a subject whose consent is being recorded (its pick skips locked rows) and erases the new event with
    /// the rest when a later batch takes it; a grant that comes while a batch holds the subject waits for the batch,
    /// then finds the row gone (GC003) or, when the batch anonymized it, records a new history. `KEY SHARE` does
    /// not conflict with the shop's own updates of the row's other columns.
    ///
    /// The function is migration 7's `gallra.consent_target` with that lock added (and so volatile), derived from its text so that
    /// the two cannot drift apart; `MigrationTests` checks the lock is there.
    static let migration10 = Migration(
        version: 10,
        description: "consent_target locks the subject row while a grant or revocation is recorded",
        statements: [
            consentTargetWithSubjectLock,
            """
            COMMENT ON FUNCTION gallra.consent_target(text, text, text, text) IS
                'The checks the consent functions share: the arguments, the policy (known, its subject table, its '
                'legal basis, its state) and the subject, whose row a grant or revocation locks (FOR KEY SHARE); '
                'returns the policy''s version and the subject as stored.'
            """,
        ])

    /// Migration 7's definition of `gallra.consent_target`, replacing the function and locking the subject row.
    static var consentTargetWithSubjectLock: String {
        guard
            let definition = migration7.statements.first(where: {
                $0.hasPrefix("CREATE FUNCTION gallra.consent_target(")
            })
        else {
            // Unreachable while migration 7 is as released (never edited); a clear failure if it were not.
            return
                "DO $$ BEGIN RAISE EXCEPTION 'this gallra binary is broken: migration 7 defines no consent_target'; END $$"
        }
        return
            definition
            .replacing(
                "CREATE FUNCTION gallra.consent_target(", with: "CREATE OR REPLACE FUNCTION gallra.consent_target("
            )
            // Row locks are for volatile functions only.
            .replacing("LANGUAGE plpgsql STABLE SET", with: "LANGUAGE plpgsql VOLATILE SET")
            .replacing(
                "'SELECT %1$I::text FROM %2$I.%3$I WHERE %1$I = $1::%4$s'",
                with: "'SELECT %1$I::text FROM %2$I.%3$I WHERE %1$I = $1::%4$s FOR KEY SHARE'")
    }
}
