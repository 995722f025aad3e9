#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore
import GallraPolicy
import GallraPostgres

/// A policy to run: its resolved plan, the stored version applied, and its state.
public struct RunPolicy: Sendable {
    public var resolved: ResolvedPolicy
    /// The version in `gallra.policy` (recorded in the audit trail).
    public var version: Int
    /// Live runs act only on active policies; dry runs include drafts (marked in the report).
    public var state: Policy.State
    /// For an `on_request` policy, which subjects its rule holds for (every due request unless narrowed).
    public var requests: ErasureScope
    /// A replay after a restore: the keys (their text) of the subjects to process again, whatever the rule and
    /// exemptions say; nil for any other run.
    public var replayKeys: [String]?

    public init(
        resolved: ResolvedPolicy, version: Int, state: Policy.State, requests: ErasureScope = .due,
        replayKeys: [String]? = nil
    ) {
        self.resolved = resolved
        self.version = version
        self.state = state
        self.requests = requests
        self.replayKeys = replayKeys
    }
}

/// How to run.
public struct RunOptions: Sendable {
    /// Live (batched deletes and anonymizations, audited) or dry (one read-only transaction that counts).
    public enum Mode: String, Sendable, Hashable, Codable {
        case live
        case dry
    }

    public var mode: Mode
    /// The instant expiry is evaluated at; nil: the server's `now()`, read once at the start.
    public var asOf: Date?
    /// Overrides the blast-radius guard (`--allow-large`).
    public var allowLarge: Bool
    /// What started the run: `schedule`, `manual`, `signal`, `notify`, `erase`, `replay`.
    public var trigger: String
    /// `statement_timeout` of each statement of a batch.
    public var statementTimeout: Duration
    /// `lock_timeout` of each statement of a batch: a lock conflict retries the batch later.
    public var lockTimeout: Duration
    /// Attempts per batch before it is skipped.
    public var maxAttempts: Int
    /// Dry runs: list up to this many due subject keys per policy (0: none).
    public var showKeys: Int
    /// The first backoff after a failed attempt (doubled each attempt, with jitter).
    public var retryBackoff: Duration
    /// The gallra version, recorded in `gallra.run`.
    public var gallraVersion: String?
    /// Live runs: pauses batches while a standby lags beyond its bounds; nil: no throttling. Dry runs ignore it.
    public var throttle: ReplicaThrottle?
    /// Opens another connection to the run's database, for a policy's `limits.parallel` batches beyond the first
    /// (which runs on the run's own connection); nil: every batch runs on the run's connection, one at a time.
    public var connect: (@Sendable () async throws -> PostgresConnection)?

    public init(
        mode: Mode, asOf: Date? = nil, allowLarge: Bool = false, trigger: String = "manual",
        statementTimeout: Duration = .seconds(60), lockTimeout: Duration = .seconds(2), maxAttempts: Int = 4,
        showKeys: Int = 0, retryBackoff: Duration = .milliseconds(200), gallraVersion: String? = nil,
        throttle: ReplicaThrottle? = nil, connect: (@Sendable () async throws -> PostgresConnection)? = nil
    ) {
        self.mode = mode
        self.asOf = asOf
        self.allowLarge = allowLarge
        self.trigger = trigger
        self.statementTimeout = statementTimeout
        self.lockTimeout = lockTimeout
        self.maxAttempts = max(1, maxAttempts)
        self.showKeys = showKeys
        self.retryBackoff = retryBackoff
        self.gallraVersion = gallraVersion
        self.throttle = throttle
        self.connect = connect
    }
}

/// Progress after each batch, for `STATUS=` and a terminal's progress line.
public struct RunProgress: Sendable, Hashable {
    public var policy: String
    public var subjectsDone: Int
    public var subjectsTotal: Int
    /// Rows deleted or anonymized per second so far in this policy.
    public var rowsPerSecond: Double
    /// The estimated time left for this policy, nil before ``batchesBeforeEstimate`` batches are done.
    public var estimatedRemaining: Duration?
    /// Set while batches are paused for replica lag: why ("replica r1 replay lag 42 s exceeds ...").
    public var pausedBy: String?

    /// Batches done before the time left is estimated: the first ones are not yet typical of the rest.
    public static let batchesBeforeEstimate = 3
}

/// What a run did (live) or would do (dry). Holds counts and digests of nothing: no row values, no keys
/// except a dry run's `--show-keys` and the subjects a live run left (for the operator; `gallra.run` stores
/// their digests only).
public struct RunReport: Sendable, Hashable, Codable {
    /// How a run ended.
    public enum Outcome: String, Sendable, Hashable, Codable {
        /// Every policy ran to the end.
        case done
        /// Some batches were skipped (lock conflicts, errors), some subjects left (a row locked, a change
        /// refused), or some due subjects were locked by another transaction; a later run picks them up.
        case partial
        /// The guard refused a policy.
        case refused
        /// A policy failed.
        case failed
        /// Cancelled (the daemon is stopping); committed batches stay done.
        case interrupted
    }

    /// The audit chain's head after the run, to log outside the database.
    public struct AuditHead: Sendable, Hashable, Codable {
        public var sequence: Int64
        public var hash: String
    }

    /// The run's id (`gallra.run.id`; a dry run's id is not stored).
    public var runID: String
    public var mode: RunOptions.Mode
    /// The instant expiry was evaluated at (ISO 8601, UTC).
    public var asOf: String
    public var trigger: String
    public var outcome: Outcome
    public var policies: [PolicyRunReport]
    /// Live runs: the audit head after the last batch.
    public var auditHead: AuditHead?
}

/// One policy's part of a run.
public struct PolicyRunReport: Sendable, Hashable, Codable {
    public var name: String
    public var version: Int
    public var state: Policy.State
    /// Subjects due at the run's instant (rule holds, not exempted, not processed before).
    public var expiring: Int
    /// Subjects the rule expires but an exemption keeps.
    public var exempted: Int
    /// Subjects the rule expires, no exemption keeps, and a legal hold in force keeps (`gallra hold`); nil when
    /// there are none (as reports stored before holds read).
    public var held: Int?
    /// Live: subjects processed (audited). Dry: the subjects a live run would process (`expiring`, unless refused).
    public var processed: Int
    /// Set when the guard refused the policy.
    public var refused: GuardRefusal?
    /// Set when the policy failed (the others went on); never holds row values.
    public var failure: PolicyFailure?
    /// Set when a live run left the policy out.
    public var skipped: SkipReason?
    /// Batches skipped after their attempts ran out.
    public var skippedBatches: [BatchFailure]
    /// Live: subjects a batch left to a later run while the rest of the batch went on (a row locked by another
    /// transaction, or a change the database refused); nil when there are none. The run is then `partial`.
    public var leftSubjects: [LeftSubject]?
    /// Live: subjects still due when the policy's batches ended (in skipped batches, or locked by another
    /// transaction when their batch picked, `SKIP LOCKED`); a later run takes them. The run is then `partial`.
    public var stillDue: Int
    /// Rows per table and action, summed over the data points.
    public var tables: [TableCounts]
    /// Rows per data point, in apply order.
    public var steps: [StepCounts]
    /// Live: batches committed. Dry: the batches a live run would take.
    public var batches: Int
    /// Live: seconds the batches were paused because a standby lagged beyond the throttle's bounds.
    public var throttledSeconds: Double
    /// Dry runs with `showKeys`: the first due subject keys.
    public var keys: [String]?
    /// Consent events of the processed subjects removed from gallra's registry (live), or that a live run would
    /// remove (dry); nil when there are none.
    public var consentEvents: Int?
    /// Live: entries of `gallra.processed` and `gallra.processed_row` removed after the batches because their rows
    /// are gone (the shop deleted them since); nil when there were none.
    public var pruned: Int?

    init(name: String, version: Int, state: Policy.State) {
        self.name = name
        self.version = version
        self.state = state
        expiring = 0
        exempted = 0
        processed = 0
        skippedBatches = []
        stillDue = 0
        tables = []
        steps = []
        batches = 0
        throttledSeconds = 0
    }
}

/// Why a live run left a policy out. The raw value is the text stored in reports and printed.
public enum SkipReason: String, Sendable, Hashable, Codable, CustomStringConvertible {
    case draft = "the policy is draft: live runs act only on active policies"
    case disabled = "the policy is disabled: live runs act only on active policies"
    case interrupted = "the run was interrupted before this policy"

    /// The reason to leave out a policy in `state`, nil for an active one.
    init?(notActive state: Policy.State) {
        switch state {
        case .active: return nil
        case .draft: self = .draft
        case .disabled: self = .disabled
        }
    }

    public var description: String { rawValue }
}

/// Why a policy failed: the error's generic description (``GallraPostgres/PostgresError`` and the engine's errors
/// never include row values). Stored as that text.
public struct PolicyFailure: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public var rawValue: String
    /// The status a command ends with for this failure (the error's own, 70 for an unexpected one); not stored.
    public var exitStatus: ExitStatus
    /// The server's SQLSTATE, when the failure is a database error; not stored.
    public var sqlState: SQLState?

    public init(rawValue: String) {
        self.rawValue = rawValue
        exitStatus = .software
    }

    /// The failure `error` describes.
    init(_ error: any Error) {
        rawValue = String(describing: error)
        exitStatus = (error as? any ExitStatusProviding)?.exitStatus ?? .software
        sqlState = (error as? PostgresError)?.sqlState
    }

    /// Decoded from the text alone, as reports store it.
    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
        exitStatus = .software
    }

    /// Encoded as the text alone, as reports store it.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
}

/// Why the blast-radius guard refused a policy, with the numbers and the override.
public struct GuardRefusal: Sendable, Hashable, Codable, CustomStringConvertible {
    public var expiring: Int
    /// The subject table's rows (exact, or the planner's estimate for large tables).
    public var tableRows: Int
    public var maxSubjectsPerRun: Int
    public var maxFraction: Double

    public var description: String {
        let percent = tableRows > 0 ? Double(expiring) / Double(tableRows) * 100 : 100
        return
            "\(expiring) subjects are due (\(NumberText.fixed(percent, digits: 1)) % of \(tableRows) rows), over the limits max_subjects_per_run \(maxSubjectsPerRun) / max_fraction \(maxFraction); raise the limits in the policy, or run once with --allow-large"
    }
}

/// A batch skipped after its attempts: which keys (as a range of the key order, never the keys of a live run)
/// and why.
public struct BatchFailure: Sendable, Hashable, Codable {
    /// The batch's number in the policy's run (1-based).
    public var batch: Int
    /// Subjects in the batch.
    public var subjects: Int
    public var attempts: Int
    /// The last error, without row values (``GallraPostgres/PostgresError``'s generic description).
    public var error: String
    /// The SQLSTATE, when the server reported one.
    public var sqlState: String?
}

/// A subject a batch left to a later run, while the batch's other subjects went on: it is untouched, has no audit
/// record, and is due again at the next run.
public struct LeftSubject: Sendable, Hashable, Codable {
    /// Why a subject was left.
    public enum Reason: String, Sendable, Hashable, Codable, CustomStringConvertible {
        /// A row of the subject was locked by another transaction when its batch started: left without waiting.
        case rowLocked = "row locked by another transaction"
        /// The database refused the subject's change (a constraint, a value, a trigger): waiting would not help.
        case refused = "refused by the database"

        public var description: String { rawValue }
    }

    /// The subject's key, for the operator's terminal and the run's output; nil in the report stored in
    /// `gallra.run`, which names the subject by its digest only.
    public var key: String?
    /// The subject's audit digest (as the audit trail would name it), for the journal and the stored report.
    public var digest: String
    public var reason: Reason
    /// The table whose row was locked, or the table the server named in its error.
    public var table: String?
    /// The server's SQLSTATE, for a refusal.
    public var sqlState: String?
    /// The server's error (``GallraPostgres/PostgresError``'s description: its primary message, which a trigger
    /// may have worded with the subject's values); nil in the stored report.
    public var message: String?

    public init(
        key: String?, digest: String, reason: Reason, table: String? = nil, sqlState: String? = nil,
        message: String? = nil
    ) {
        self.key = key
        self.digest = digest
        self.reason = reason
        self.table = table
        self.sqlState = sqlState
        self.message = message
    }

    /// As `gallra.run` stores it: without the key and the server's message.
    public var stored: LeftSubject {
        var stored = self
        stored.key = nil
        stored.message = nil
        return stored
    }
}

/// Rows of one table.
public struct TableCounts: Sendable, Hashable, Codable {
    public var table: String
    public var deleted: Int
    public var anonymized: Int
    public var retained: Int
}

/// Rows of one data point.
public struct StepCounts: Sendable, Hashable, Codable {
    /// What a data point's step does to its rows.
    public enum Action: String, Sendable, Hashable, Codable {
        case delete
        case anonymize
        /// Deletes the rows nothing references any more, anonymizes the others.
        case deleteOrAnonymize = "delete_or_anonymize"

        /// The report's name for a resolved step's action.
        public init(_ action: ResolvedStep.Action) {
            switch action {
            case .delete: self = .delete
            case .anonymize: self = .anonymize
            case .deleteOrAnonymize: self = .deleteOrAnonymize
            }
        }
    }

    /// `data[dataPoint]` in the policy file.
    public var dataPoint: Int
    public var table: String
    public var action: Action
    /// Rows deleted or anonymized.
    public var rows: Int
    /// Rows kept because they are shared.
    public var retained: Int
    /// For ``Action/deleteOrAnonymize``: of ``rows``, those anonymized because something still referenced them
    /// (the others were deleted); nil for the other actions.
    public var anonymized: Int?

    /// Rows deleted.
    public var deleted: Int {
        switch action {
        case .delete: rows
        case .anonymize: 0
        case .deleteOrAnonymize: rows - (anonymized ?? 0)
        }
    }

    /// Rows anonymized.
    public var anonymizedRows: Int {
        switch action {
        case .delete: 0
        case .anonymize: rows
        case .deleteOrAnonymize: anonymized ?? 0
        }
    }
}

/// Errors that stop a run before it starts.
public enum RunError: ExitStatusProviding, Sendable, Hashable {
    /// A live run without the audit key.
    case missingAuditKey

    public var description: String {
        switch self {
        case .missingAuditKey:
            "live runs need the audit key (audit.key_file in the configuration, or the credential audit-key) to write the audit trail; dry runs work without it"
        }
    }

    /// As the CLI reported it before it knew the type: an internal error.
    public var exitStatus: ExitStatus { .software }
}
