extension Schema {
    /// Version 15: the audit records' subject digests are indexed by hash. The digests are uniformly random, so every
    /// batch's records fell on leaves all over the B-tree, as many leaves as records, a fifth of the index's pages
    /// at every batch once the trail holds a few hundred thousand subjects; where the buffer pool is smaller than the
    /// purged tables each of those leaves was read back and written out again at every batch. A hash index holds a
    /// four-byte hash code per record instead of the 64-character digest: about a fifth of the pages, which stay in
    /// the pool. Lookups of a digest (`= $1`, `= ANY (...)`: explain, replay, the audit's subject history) are all
    /// equality, which a hash index answers.
    static let migration15 = Migration(
        version: 15,
        description: "audit_subject.subject_digest: a hash index",
        statements: [
            "DROP INDEX gallra.audit_subject_digest",
            "CREATE INDEX audit_subject_digest ON gallra.audit_subject USING hash (subject_digest)",
        ])
}
