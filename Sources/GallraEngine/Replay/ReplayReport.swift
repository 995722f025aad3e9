import GallraCore

/// One block of the erasure ledger whose subjects a restored database may have again: the policy and version that
/// processed them, the subject table as their digests were made with it, and their digests (hex).
public struct ReplayBlock: Sendable, Hashable {
    public var sequence: Int64
    public var policy: String
    public var policyVersion: Int
    /// The text the digests were made with (``SubjectDigester/digest(table:key:)``).
    public var subjectTable: String
    public var digests: [String]
    /// The check value of the audit key the digests were made with (``SubjectDigester/keyCheck``), when recorded.
    public var keyCheck: String?

    public init(
        sequence: Int64, policy: String, policyVersion: Int, subjectTable: String, digests: [String],
        keyCheck: String? = nil
    ) {
        self.sequence = sequence
        self.policy = policy
        self.policyVersion = policyVersion
        self.subjectTable = subjectTable
        self.digests = digests
        self.keyCheck = keyCheck
    }
}

/// What a replay did (live) or would do (dry run), per policy version the ledger names.
public struct ReplayReport: Sendable, Hashable, Codable {
    /// How a replay ended.
    public enum Outcome: String, Sendable, Hashable, Codable {
        /// Every subject found was processed again (or, in a dry run, nothing stands in the way).
        case done
        /// Some subjects found were not processed: a legal hold, a row locked by the shop, a change the database
        /// refused. Replay again once that is resolved, or accept the restore.
        case partial
        /// Some policy the ledger names cannot run here (not stored, or invalid against the catalog): nothing of it
        /// was processed.
        case unresolved
    }

    public var dryRun: Bool
    /// Ledger blocks after the fork point that the replay looked at.
    public var blocks: Int
    public var outcome: Outcome
    public var policies: [ReplayPolicyReport]
    /// The live run that processed the subjects again (trigger `replay`); nil in a dry run or when nothing was
    /// found.
    public var run: RunReport?

    /// Subjects processed again (live), or that would be (dry run: those found).
    public var replayed: Int {
        policies.reduce(0) { $0 + (dryRun ? $1.found : $1.processed ?? 0) }
    }
}

/// One policy version's part of a replay.
public struct ReplayPolicyReport: Sendable, Hashable, Codable {
    public var policy: String
    /// The version the ledger recorded.
    public var recordedVersion: Int
    /// The version processed under: the recorded one, or the current one when the store no longer holds it; nil when
    /// the policy cannot run (``unresolved``).
    public var version: Int?
    /// Set when the version used is not the recorded one, or the policy cannot run: what and why.
    public var note: String?
    /// Why the policy cannot run here; its subjects are not processed.
    public var unresolved: String?
    /// The subject table as the digests name it.
    public var subjectTable: String
    /// Subjects of the ledger's blocks after the fork point under this policy version.
    public var recorded: Int
    /// Of them, those the restored audit trail already records under the policy: nothing to do.
    public var inTrail: Int
    /// Subjects to process again: recorded, not in the restored trail.
    public var subjects: Int
    /// Of those, the subjects with a row in the subject table now.
    public var found: Int
    /// Of those, the subjects without a row now (deleted since, or never restored): nothing to do.
    public var gone: Int
    /// Live: the subjects processed again; nil in a dry run.
    public var processed: Int?
    /// Live: subjects found but not processed (a legal hold, a row the shop held, a change refused).
    public var notProcessed: Int?
    /// Dry run: up to five keys of found subjects, for the operator who asked (never logged).
    public var sampleKeys: [String]?
}

/// Why a replay cannot start.
public struct ReplayError: Error, Sendable, Hashable, CustomStringConvertible, ExitStatusProviding {
    public var description: String
    public var exitStatus: ExitStatus

    public init(_ description: String, exitStatus: ExitStatus) {
        self.description = description
        self.exitStatus = exitStatus
    }

    /// Replay digests the subject tables' keys: it needs the key the ledger's digests were made with.
    static let missingAuditKey = ReplayError(
        "replay needs the audit key (audit.key_file in the configuration, or the credential audit-key): the ledger "
            + "names subjects by their digests under it, dry run or not",
        exitStatus: .configuration)
}
