/// A named rule set: which subjects expire, and what happens to their data (docs/policy-language.md).
///
/// A value: equal documents give equal policies whatever their layout, key order or format (YAML or JSON).
/// Where each part was written is kept apart, in ``PolicySourceMap``.
public struct Policy: Sendable, Hashable {
    /// The policy's name (`policy:`).
    public var name: PolicyName
    /// Free text for people (`description:`).
    public var description: String?
    /// Why the data is processed, in words a subject understands (`purpose:`); shown to the subject in exports.
    /// Surrounding white space is not kept; at most ``maximumPurposeLength`` characters.
    public var purpose: String?
    /// The lawful basis of the processing (`legal_basis:`), GDPR Art. 6(1).
    public var legalBasis: LegalBasis?
    /// When the shop may collect the subject's data (`collect:`); `.always` unless the file says otherwise.
    public var collection: Collection
    /// `state:`; a file that does not say is a `draft`, which only dry runs use.
    public var state: State
    /// Who the data is about (`subject:`).
    public var subject: Subject
    /// When a subject expires (`expires:`).
    public var rule: Rule
    /// Subjects the policy never touches (`except:`).
    public var exemptions: [Exemption]
    /// The schedule as written (`schedule:`); nil means the configured default. Parsed by `Schedule(parsing:)`.
    public var schedule: String?
    /// Where the subject's data lives and what to do with it (`data:`), in the order written.
    public var dataPoints: [DataPoint]
    /// Bounds on one run (`limits:`).
    public var limits: Limits

    /// The longest `purpose:`, in characters: a statement of purpose, not a privacy notice.
    public static let maximumPurposeLength = 1000

    /// The lifecycle state of a policy.
    public enum State: String, Sendable, Hashable, Codable, CaseIterable {
        /// Dry runs only.
        case draft
        /// Live runs act on it.
        case active
        /// Neither runs.
        case disabled
    }

    /// When data of a subject may be written (`collect:`).
    public enum Collection: String, Sendable, Hashable, Codable, CaseIterable {
        /// Whenever the shop writes it; gallra guards nothing (the default, not written in the canonical form).
        case always
        /// Only while the subject's consent to the policy is in force in gallra's consent registry: an active
        /// policy guards each data-point table that links to the subject directly with a trigger.
        case withConsent = "with_consent"
    }

    /// A policy from its parts.
    public init(
        name: PolicyName,
        description: String? = nil,
        purpose: String? = nil,
        legalBasis: LegalBasis? = nil,
        collection: Collection = .always,
        state: State = .draft,
        subject: Subject,
        rule: Rule,
        exemptions: [Exemption] = [],
        schedule: String? = nil,
        dataPoints: [DataPoint],
        limits: Limits = Limits()
    ) {
        self.name = name
        self.description = description
        self.purpose = purpose
        self.legalBasis = legalBasis
        self.collection = collection
        self.state = state
        self.subject = subject
        self.rule = rule
        self.exemptions = exemptions
        self.schedule = schedule
        self.dataPoints = dataPoints
        self.limits = limits
    }
}

/// A policy name: lower-case letters, digits, `-` and `_`, starting with a letter or digit, at most 63 characters.
public struct PolicyName: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The name.
    public let rawValue: String

    /// The longest name; it appears in journal fields and in `gallra.policy`.
    public static let maximumLength = 63

    /// Validates a name.
    public init(_ text: String) throws(PolicyNameError) {
        guard !text.isEmpty else { throw PolicyNameError(message: "a policy name cannot be empty") }
        guard text.utf8.count <= Self.maximumLength else {
            throw PolicyNameError(
                message: "policy name \(text.quotedForMessage) is longer than \(Self.maximumLength) characters")
        }
        guard Self.isValid(text) else {
            let lower = text.lowercased()
            let hint = lower != text && Self.isValid(lower) ? "; write \(lower.quotedForMessage)" : ""
            throw PolicyNameError(
                message:
                    "policy name \(text.quotedForMessage) may hold only a-z, 0-9, - and _, and must start with a letter or digit\(hint)"
            )
        }
        rawValue = text
    }

    public var description: String { rawValue }

    private static func isValid(_ text: String) -> Bool {
        text.utf8.enumerated().allSatisfy { offset, byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            case UInt8(ascii: "-"), UInt8(ascii: "_"): offset > 0
            default: false
            }
        }
    }

    public static func < (lhs: PolicyName, rhs: PolicyName) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Why a text is not a policy name.
public struct PolicyNameError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong and how to fix it.
    public var message: String
    public var description: String { message }
}

/// The subject table and the key that identifies one subject (`subject: { table: shop.customer, key: id }`).
public struct Subject: Sendable, Hashable {
    /// The subject table.
    public var table: QualifiedName
    /// The key column: a primary key or a unique not-null column (checked against the catalog).
    public var key: ColumnName

    /// A subject from its parts.
    public init(table: QualifiedName, key: ColumnName) {
        self.table = table
        self.key = key
    }
}

/// When a subject expires (`expires:`).
public enum Rule: Sendable, Hashable {
    /// No activity for the period (`inactive_for: 1 year` with `activity:`).
    case inactiveFor(RetentionPeriod, activity: Activity)
    /// Created longer ago than the period (`older_than: 7 years` with `created:`).
    case olderThan(RetentionPeriod, created: ColumnName)
    /// The period has passed since an event recorded in a column (`after: 2 years` with `event: employment_ended_at`).
    /// A null event column means the event has not happened: such subjects never expire by this rule.
    case after(RetentionPeriod, event: ColumnName)
    /// Consent was revoked and the grace period has passed (`consent_revoked: 30 days` with `consent:`).
    case consentRevoked(grace: RetentionPeriod, consent: ConsentSource)
    /// A pending, due erasure request names the subject (`expires: on_request`): the policy erases on request, not
    /// on a date. At most one active on-request policy per subject table and purpose.
    case onRequest

    /// Where the last activity of a subject is read.
    public enum Activity: Sendable, Hashable {
        /// A timestamp column of the subject table (`activity: last_seen_at`).
        case column(ColumnName)
        /// The latest row of a related table (`activity: { table: shop.order, column: placed_at }`);
        /// `via` names the linking column where no single foreign key links the tables.
        /// A subject with no such row (or with a related row whose column is null) does not expire: without a
        /// known date gallra keeps the subject.
        case latestRow(table: QualifiedName, column: ColumnName, via: ColumnName?)
    }

    /// Where consent revocations are recorded.
    public enum ConsentSource: Sendable, Hashable {
        /// An application table holding a revocation timestamp per subject
        /// (`consent: { table: crm.consent, revoked_at: withdrawn_at, via: customer_id }`).
        case table(QualifiedName, revokedAt: ColumnName, via: ColumnName?)
        /// gallra's own consent table (`consent: gallra`); added in a later wave.
        case gallra
    }

    /// The period of the rule, whatever its kind (zero for `on_request`, which reads no date).
    public var period: RetentionPeriod {
        switch self {
        case .inactiveFor(let period, _), .olderThan(let period, _), .after(let period, _): period
        case .consentRevoked(let grace, _): grace
        case .onRequest: RetentionPeriod()
        }
    }
}

/// Subjects a policy never touches (`except:`).
public enum Exemption: Sendable, Hashable {
    /// A column of the subject row matches (`{ column: legal_hold, is: true }`).
    case column(ColumnName, Predicate)
    /// A related row exists (`{ exists: shop.order, where: { status: { in: [open, paid] } } }`).
    /// `via` names the linking column; `through` names intermediate tables of a longer path.
    /// Every condition in `where` must hold for a row to count; conditions are ordered by column name.
    case relatedExists(
        table: QualifiedName, through: [QualifiedName], via: ColumnName?, conditions: [ColumnCondition])

    /// A condition on a column value.
    public enum Predicate: Sendable, Hashable {
        /// `is: true`, `is: false`, `is: null` (SQL `IS TRUE`, `IS FALSE`, `IS NULL`).
        case `is`(Truth)
        /// `equals: value` (a null column never equals).
        case equals(Scalar)
        /// `in: [a, b]`.
        case `in`([Scalar])
        /// `not_in: [a, b]` (a null column is not exempt: it is not known to be outside the list).
        case notIn([Scalar])
    }

    /// The operand of `is`.
    public enum Truth: String, Sendable, Hashable, Codable, CaseIterable {
        case `true`, `false`, null
    }

    /// One `where` condition of a related-row exemption.
    public struct ColumnCondition: Sendable, Hashable {
        /// The column of the related table.
        public var column: ColumnName
        /// What it must satisfy.
        public var predicate: Predicate

        /// A condition from its parts.
        public init(column: ColumnName, predicate: Predicate) {
            self.column = column
            self.predicate = predicate
        }
    }
}

/// A literal value in a policy (`equals`, `in`, `set`). Always bound as a parameter, never spliced into SQL.
public enum Scalar: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case integer(Int64)
    /// A decimal number kept as written (e.g. "12.50") so that no precision is lost on the way to `numeric`.
    case decimal(String)
    case boolean(Bool)
    case null

    public var description: String {
        switch self {
        case .string(let text): text.quotedForMessage
        case .integer(let value): String(value)
        case .decimal(let text): text
        case .boolean(let value): String(value)
        case .null: "null"
        }
    }
}

/// One place holding the subject's data, and what to do with it (an entry of `data:`).
public struct DataPoint: Sendable, Hashable {
    /// The table holding the data.
    public var table: QualifiedName
    /// Intermediate tables on the path from the subject to `table`, nearest the subject first.
    public var through: [QualifiedName]
    /// The linking column where no single foreign key links `table` to the previous table on the path.
    public var via: ColumnName?
    /// What happens to the rows.
    public var action: Action

    /// A data point from its parts.
    public init(table: QualifiedName, through: [QualifiedName] = [], via: ColumnName? = nil, action: Action) {
        self.table = table
        self.through = through
        self.via = via
        self.action = action
    }
}

/// What happens to the rows of a data point.
public enum Action: Sendable, Hashable {
    /// Delete the rows (`delete: true`).
    case delete
    /// Overwrite columns (`anonymize: { email: fake_email, phone: null }`), ordered by column name:
    /// one UPDATE sets them all at once, so the written order carries no meaning (and `jsonb` would not keep it).
    case anonymize([ColumnAnonymization])
    /// Delete the rows, except those something still references through a foreign key (a kept row, or a row
    /// the subject points to that others share), which are anonymized instead (`delete: true` and `anonymize`
    /// together). The columns are ordered by name, as for ``anonymize(_:)``.
    case deleteOrAnonymize([ColumnAnonymization])

    /// The columns an anonymization writes: those of ``anonymize(_:)`` and ``deleteOrAnonymize(_:)``; empty for a delete.
    public var anonymizedColumns: [ColumnAnonymization] {
        switch self {
        case .delete: []
        case .anonymize(let columns), .deleteOrAnonymize(let columns): columns
        }
    }

    /// Whether rows may be deleted (``delete`` and ``deleteOrAnonymize(_:)``).
    public var mayDelete: Bool {
        switch self {
        case .delete, .deleteOrAnonymize: true
        case .anonymize: false
        }
    }
}

/// One column of an `anonymize` action.
public struct ColumnAnonymization: Sendable, Hashable {
    /// The column to overwrite.
    public var column: ColumnName
    /// How.
    public var strategy: Strategy

    /// A column and its strategy.
    public init(column: ColumnName, strategy: Strategy) {
        self.column = column
        self.strategy = strategy
    }
}

/// How a column is anonymized.
public enum Strategy: Sendable, Hashable, CustomStringConvertible {
    /// Set to NULL (`null`).
    case null
    /// A constant that fits the column's type (`redact`), or the given text (`{ redact: "[removed]" }`).
    case redact(String?)
    /// Keyed HMAC-SHA-256 of the value, as hex (`hash`). This is a *pseudonym*, not anonymization: anyone
    /// with the key can confirm a guessed value, and equal values stay linkable. GDPR still treats the
    /// result as personal data (Recital 26); use it where records must stay joinable, not to erase.
    case hash
    /// A unique address at `example.invalid` (`fake_email`), for columns that must stay unique and well-formed.
    case fakeEmail
    /// A date or timestamp truncated to the start of its year, month or day (`truncate(year)`).
    case truncate(TruncationUnit)
    /// A given value (`{ set: 0 }`).
    case set(Scalar)

    /// The precision `truncate` keeps.
    public enum TruncationUnit: String, Sendable, Hashable, Codable, CaseIterable {
        case year, month, day
    }

    /// The strategy as written in a policy file (`truncate(year)`, `redact("x")`).
    public var description: String {
        switch self {
        case .null: "null"
        case .redact(nil): "redact"
        case .redact(let text?): "redact(\(text.quotedForMessage))"
        case .hash: "hash"
        case .fakeEmail: "fake_email"
        case .truncate(let unit): "truncate(\(unit.rawValue))"
        case .set(let value): "set(\(value))"
        }
    }
}

/// Bounds on one run of a policy (`limits:`).
public struct Limits: Sendable, Hashable {
    /// Subjects per batch (one transaction); `batch_size`.
    public var batchSize: Int
    /// A run refuses the policy if more subjects are due; `max_subjects_per_run`.
    public var maxSubjectsPerRun: Int
    /// A run refuses the policy if more than this fraction of the subject table is due, in (0, 1]; `max_fraction`.
    public var maxFraction: Double
    /// Wait between batches, to leave the server to the application; `pause`.
    public var pause: Pause
    /// Batches in flight at once, each in its own transaction on its own connection; `parallel`. Each
    /// connection pauses after its own batches, so `parallel: 2` gives the purge twice the server's time.
    public var parallel: Int

    /// The most batches a policy may have in flight.
    public static let maximumParallel = 16

    /// Limits, by default 1000 per batch, 50 000 per run, 20 % of the table, a pause nine times as long as
    /// each batch took, and one batch at a time.
    public init(
        batchSize: Int = 1000,
        maxSubjectsPerRun: Int = 50000,
        maxFraction: Double = 0.2,
        pause: Pause = .default,
        parallel: Int = 1
    ) {
        self.batchSize = batchSize
        self.maxSubjectsPerRun = maxSubjectsPerRun
        self.maxFraction = maxFraction
        self.pause = pause
        self.parallel = parallel
    }
}

/// How long a run waits after each batch (`pause`), so that a long purge leaves the server to the application.
public enum Pause: Sendable, Hashable {
    /// A fixed wait (`200ms`, `2s`); `0` runs at full speed.
    case fixed(Duration)
    /// A wait in proportion to the batch just done (`100%`: as long as it took, so the run has the server at
    /// most half the time, however busy it is).
    case proportional(percent: Int)

    /// The default: `900%`, so a purge runs at most a tenth of the time. On the benchmark's two cores a shop
    /// transaction that overlaps a batch has a 99th-percentile latency about twice its idle value; at `900%`
    /// few enough overlap one that the shop's p99 stays at its idle value, where `300%` made it 1.4 times
    /// that and `100%` 1.6 times (docs/benchmark.md).
    public static let `default` = Pause.proportional(percent: 900)
    /// The largest proportion: ten times the batch's own time.
    public static let maximumPercent = 1000

    /// The wait after a batch that took `batch`.
    public func after(batch: Duration) -> Duration {
        switch self {
        case .fixed(let wait): wait
        case .proportional(let percent): min(batch * Double(percent) / 100, PauseDuration.maximum)
        }
    }

    /// Canonical text: "0", "200ms", "2s", "100%".
    public var description: String {
        switch self {
        case .fixed(let wait): PauseDuration.format(wait)
        case .proportional(let percent): "\(percent)%"
        }
    }
}
