import GallraCore

/// Which erasure requests to process.
public enum ErasureSelection: Sendable, Hashable {
    /// Every pending request whose undo window has passed (`not_before` at or before now), oldest first. A request
    /// another gallra is processing is left to it (`pg_try_advisory_lock`): the service's sweep.
    case due
    /// These requests, in this order. A request another gallra is processing is waited for, and its outcome then
    /// reported: `gallra erase`. A request not due yet, or already decided, is reported as it stands.
    case ids([Int64])
}

/// What processing one erasure request came to.
public struct ErasureOutcome: Sendable, Hashable, Codable {
    /// Where the request stands after processing.
    public enum Status: String, Sendable, Hashable, Codable {
        /// Erased: the on-request policies no longer find the subject due.
        case done
        /// Refused, with ``ErasureOutcome/refusal``.
        case refused
        /// Still pending: not due yet, or its subject's rows were locked by the shop (tried again later).
        case pending
        /// Cancelled before it was processed.
        case cancelled
    }

    /// Why a request was refused, for exit statuses and journal fields.
    public enum Refusal: String, Sendable, Hashable, Codable {
        /// No active on-request policy covers the subject table.
        case noPolicy = "no_policy"
        /// A legal hold in force stops it.
        case held
        /// No row of the subject table has the key (and the audit trail shows no erasure since the request).
        case notFound = "not_found"
        /// An exemption of an on-request policy keeps the subject.
        case exempt

        /// The exit status of `gallra erase` refused for this reason.
        public var exitStatus: ExitStatus {
            switch self {
            case .noPolicy: .configuration
            case .held, .exempt: .temporaryFailure
            case .notFound: .noInput
            }
        }
    }

    /// Rows of one table the erasure changed or kept, summed over the policies that acted.
    public struct Count: Sendable, Hashable, Codable {
        /// The table, schema-qualified.
        public var table: String
        /// `delete`, `anonymize` or `retain` (kept because rows that stay still use it).
        public var action: String
        public var rows: Int

        public init(table: String, action: String, rows: Int) {
            self.table = table
            self.action = action
            self.rows = rows
        }
    }

    /// The request's id.
    public var id: Int64
    /// The subject table as the policies name it.
    public var subjectTable: String
    /// The subject's audit digest (HMAC of `table:key`); never the key.
    public var subjectDigest: String
    public var status: Status
    /// For a done request, the rows per table and action from the subject's audit records.
    public var counts: [Count]
    /// For a refused request, why (the hold and its reason, the exemption and its policy, ...).
    public var refusal: String?
    /// For a refused request, the kind of reason.
    public var refusalKind: Refusal?
    /// The run that erased the subject (`gallra.run.id`).
    public var run: String?
    /// How often gallra has tried the request.
    public var attempts: Int
    /// For a pending request not due yet, when it becomes due (ISO 8601, UTC).
    public var notBefore: String?

    public init(
        id: Int64, subjectTable: String, subjectDigest: String, status: Status, counts: [Count] = [],
        refusal: String? = nil, refusalKind: Refusal? = nil, run: String? = nil, attempts: Int = 0,
        notBefore: String? = nil
    ) {
        self.id = id
        self.subjectTable = subjectTable
        self.subjectDigest = subjectDigest
        self.status = status
        self.counts = counts
        self.refusal = refusal
        self.refusalKind = refusalKind
        self.run = run
        self.attempts = attempts
        self.notBefore = notBefore
    }
}

/// A refusal, as the checks before an erasure find it.
struct ErasureRefusal: Sendable, Hashable {
    var kind: ErasureOutcome.Refusal
    var text: String
}

// Every key is written, null when unknown, so that the JSON has one shape whatever the outcome.
extension ErasureOutcome {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(subjectTable, forKey: .subjectTable)
        try container.encode(subjectDigest, forKey: .subjectDigest)
        try container.encode(status, forKey: .status)
        try container.encode(counts, forKey: .counts)
        try container.encode(refusal, forKey: .refusal)
        try container.encode(refusalKind, forKey: .refusalKind)
        try container.encode(run, forKey: .run)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(notBefore, forKey: .notBefore)
    }
}
