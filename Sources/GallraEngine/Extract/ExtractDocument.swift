import GallraPolicy

/// The parts of a register extract (`gallra export`) that come before the rows: who the subject is, the policies
/// over its table, its consent history and what the audit trail holds of it. Small: read whole, written first.
public struct ExtractHeader: Sendable {
    /// When the snapshot was taken (the transaction's `now()`), in microseconds since 1970-01-01 UTC.
    public var takenAtMicroseconds: Int64
    /// The database read.
    public var database: String
    /// The subject table, schema-qualified, as the plan names it (`shop."order"`).
    public var subjectTable: String
    /// The key column the subject was found by.
    public var keyColumn: String
    /// The key, as PostgreSQL prints it.
    public var key: String
    /// Active and draft policies over the subject table, by name.
    public var policies: [ExtractPolicy]
    /// Stored policies that could not be checked against the catalog: their data points are not followed.
    public var uncheckedPolicies: [UncheckedPolicy]
    /// The subject's consent events under the policies of its table, in the order recorded.
    public var consent: [ConsentEvent]
    /// What the audit trail holds of the subject, or why it could not be read.
    public var history: ExtractHistory
}

/// One policy over the subject table, as an extract describes it.
public struct ExtractPolicy: Sendable {
    public var name: String
    public var version: Int
    public var state: Policy.State
    public var description: String?
    public var purpose: String?
    public var legalBasis: LegalBasis?
    /// The retention rule in words, as `gallra plan` prints it.
    public var rule: String
    /// The tables of its data points (the subject table first), as the plan names them.
    public var tables: [String]
    /// Where the subject stands under the policy at the snapshot's instant.
    public var standing: Standing
    /// Why, as `gallra explain` says it (`Engine.standing`): the verdict, the date the rule reads and when the
    /// subject expires, the exemptions that hold, the consent the rule reads.
    public var why: PolicyStanding

    /// Where a subject stands under a policy: what a run at that instant would do with it (a draft policy only
    /// plans). `gallra explain` says why at length.
    public enum Standing: String, Sendable, CaseIterable {
        /// The rule holds and no exemption does: a run processes it.
        case due
        /// The rule holds, but an exemption keeps it.
        case exempt
        /// The rule holds and no exemption does, but a legal hold keeps it (`gallra hold`).
        case held
        /// The policy processed it already (its row stays, anonymized).
        case processed
        /// The rule does not hold (yet).
        case notDue = "not_due"
    }
}

/// A stored policy left out of an extract because it does not validate against the catalog.
public struct UncheckedPolicy: Sendable {
    public var name: String
    public var reason: String
}

/// The audit trail's part of an extract: found by the subject's digest, so it needs the audit key.
public enum ExtractHistory: Sendable {
    /// Read with the audit key: the subject's records (runs that processed it) and earlier extracts.
    case found(subjectDigest: String, records: [AuditSubjectEntry], exports: [AuditExport])
    /// No audit key was given: the trail cannot be searched.
    case noAuditKey
}

/// One table of an extract: its columns and the policies whose data points reach it.
public struct ExtractTable: Sendable {
    /// Schema-qualified, as the plan names it.
    public var name: String
    public var columns: [ExtractColumn]
    /// The policies that cover it, by name.
    public var policies: [String]
}

/// A column of an extract's table, with its type as `format_type` prints it.
public struct ExtractColumn: Sendable {
    public var name: String
    public var type: String
    /// The type's name without modifiers, a domain resolved to its base type (`timestamptz`, `jsonb`, `bytea`): what
    /// decides how the value is written in a row.
    public var baseType: String
}

/// Where an extract is written, part by part, as the snapshot is read: the header, then each table with its rows
/// in chunks, then the end. Rows come as JSON objects (column name to value: numbers, booleans, timestamps with
/// zone in RFC 3339, json as json, bytea as base64, everything else as text, NULL as null), in the table's column
/// order. A writer is driven by one task at a time.
public protocol ExtractWriter: AnyObject, Sendable {
    func begin(_ header: ExtractHeader) throws
    func beginTable(_ table: ExtractTable) throws
    /// A chunk of the table's rows, each a JSON object's text.
    func rows(_ rows: [String]) throws
    func endTable(rowCount: Int) throws
    func finish() throws
}
