import GallraCore
import GallraPostgres

/// A legal hold: a stop on one subject that every policy over its table (or the one policy it names) respects
/// until it is released or its `until` has passed. A row of `gallra.hold`.
public struct Hold: Sendable, Hashable, Codable {
    /// Where a hold stands at an instant.
    public enum State: String, Sendable, Hashable, Codable {
        /// Not released, and its `until` (if any) is still ahead: policies leave the subject alone.
        case inForce = "in_force"
        /// Released with `gallra hold release`.
        case released
        /// Its `until` has passed: it released itself.
        case expired
    }

    /// The hold's number (`gallra hold release ID`).
    public var id: Int64
    /// The subject table, schema-qualified, as the audit digests name it.
    public var subjectTable: String
    /// The subject's key as PostgreSQL prints it; nil once the subject was processed after the hold ended, when
    /// only ``subjectDigest`` names it.
    public var subjectKey: String?
    /// HMAC-SHA-256 (hex) of `TABLE:KEY` under the audit key; nil when placed without one and not processed since.
    public var subjectDigest: String?
    /// The one policy the hold stops; nil: every policy over the table.
    public var policy: String?
    /// Why the subject is held.
    public var reason: String
    /// When it was placed, in microseconds since 1970-01-01 UTC.
    public var placedAtMicroseconds: Int64
    /// The operating-system user and database role that placed it.
    public var placedBy: String
    /// When it ends by itself, in microseconds since 1970-01-01 UTC; nil: until released.
    public var untilMicroseconds: Int64?
    /// When it was released; nil while in force or expired without a release.
    public var releasedAtMicroseconds: Int64?
    public var releasedBy: String?
    public var releaseReason: String?
    /// Where it stands at the instant it was read.
    public var state: State
}

/// Why a hold cannot be placed or released. The description names the table, the policy and the hold's id, never
/// the subject's key.
public struct HoldError: Error, Sendable, Hashable, ExitStatusProviding {
    public enum Code: String, Sendable, Hashable {
        /// The reason is empty or longer than 1024 bytes (exit 65).
        case badReason
        /// `until` is not in the future (exit 65).
        case untilPassed
        /// No stored policy of that name has its subjects in the table (exit 65).
        case unknownPolicy
        /// No hold has the id (exit 66).
        case noSuchHold
        /// The hold was released already, or its `until` has passed (exit 65).
        case notInForce
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var exitStatus: ExitStatus { code == .noSuchHold ? .noInput : .dataError }
    public var description: String { message }
}
