/// A five-character SQLSTATE, from the server or libpq, with the codes gallra acts on named.
///
/// The first two characters are the class (`23` integrity constraint violation): ``errorClass``.
/// Appendix A of PostgreSQL's documentation lists them all.
public struct SQLState: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public init(stringLiteral value: String) {
        self.rawValue = value
    }

    public var description: String { rawValue }

    /// The class: the first two characters.
    public var errorClass: Class { Class(rawValue: String(rawValue.prefix(2))) }

    /// A class of SQLSTATEs: the first two characters.
    public struct Class: RawRepresentable, Hashable, Sendable {
        public let rawValue: String

        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// 08: the connection failed or broke.
        public static let connectionException = Class(rawValue: "08")
        /// 22: a value does not fit (bad input syntax, out of range, division by zero).
        public static let dataException = Class(rawValue: "22")
        /// 23: a constraint refused the change (unique, foreign key, check, not null, restrict).
        public static let integrityConstraintViolation = Class(rawValue: "23")
        /// 40: the server rolled the transaction back (serialization failure, deadlock).
        public static let transactionRollback = Class(rawValue: "40")
        /// 53: the server ran short of a resource (disk, memory, connections, a configured limit).
        public static let insufficientResources = Class(rawValue: "53")
        /// 57: an operator intervened (cancel, terminate, shutdown).
        public static let operatorIntervention = Class(rawValue: "57")
        /// P0: raised by PL/pgSQL (`RAISE EXCEPTION`, a trigger's refusal).
        public static let plpgsqlError = Class(rawValue: "P0")
        /// GC: gallra's consent functions refused a call (a class PostgreSQL does not use).
        public static let gallraConsent = Class(rawValue: "GC")
    }

    /// 0A000: feature not supported; among others, a prepared statement whose result columns changed with the schema.
    public static let featureNotSupported: SQLState = "0A000"
    /// 25006: a write in a `READ ONLY` transaction.
    public static let readOnlySQLTransaction: SQLState = "25006"
    /// 28000: the server refused the role (no such role, no `pg_hba.conf` entry, peer authentication failed).
    public static let invalidAuthorizationSpecification: SQLState = "28000"
    /// 28P01: password authentication failed.
    public static let invalidPassword: SQLState = "28P01"
    /// 3D000: the database named does not exist.
    public static let invalidCatalogName: SQLState = "3D000"
    /// 23001: `ON DELETE RESTRICT` refused a delete.
    public static let restrictViolation: SQLState = "23001"
    /// 23503.
    public static let foreignKeyViolation: SQLState = "23503"
    /// 23505.
    public static let uniqueViolation: SQLState = "23505"
    /// 40001.
    public static let serializationFailure: SQLState = "40001"
    /// 40P01.
    public static let deadlockDetected: SQLState = "40P01"
    /// 42501.
    public static let insufficientPrivilege: SQLState = "42501"
    /// 42703.
    public static let undefinedColumn: SQLState = "42703"
    /// 42883: no function or operator for the argument types (a type without `=`).
    public static let undefinedFunction: SQLState = "42883"
    /// 42P01.
    public static let undefinedTable: SQLState = "42P01"
    /// 55P03: `lock_timeout` or `NOWAIT`.
    public static let lockNotAvailable: SQLState = "55P03"
    /// 57014: `statement_timeout`, `pg_cancel_backend` or a cancel request.
    public static let queryCanceled: SQLState = "57014"
    /// 57P01: the server is shutting down (`pg_terminate_backend` too).
    public static let adminShutdown: SQLState = "57P01"
    /// 57P02.
    public static let crashShutdown: SQLState = "57P02"
    /// 57P03: the server is starting up or in recovery and not accepting connections yet.
    public static let cannotConnectNow: SQLState = "57P03"
    /// P0001: `RAISE EXCEPTION` in PL/pgSQL.
    public static let raiseException: SQLState = "P0001"

    // gallra's consent functions (`gallra.grant_consent` and the others; docs/consent.md).

    /// GC001: no policy of that name is stored.
    public static let consentUnknownPolicy: SQLState = "GC001"
    /// GC002: the policy's subjects are in another table than the one given (or no policy has that table).
    public static let consentOtherSubjectTable: SQLState = "GC002"
    /// GC003: no subject has that key (or the key is not a value of the key column's type).
    public static let consentUnknownSubject: SQLState = "GC003"
    /// GC004: the policy's `legal_basis` is not `consent`.
    public static let consentNotLegalBasis: SQLState = "GC004"
    /// GC005: an argument is missing, empty or malformed.
    public static let consentInvalidArgument: SQLState = "GC005"
    /// GC006: the evidence is longer than 1024 bytes.
    public static let consentEvidenceTooLong: SQLState = "GC006"
    /// GC007: the policy is disabled, so no consent can be granted to it.
    public static let consentPolicyDisabled: SQLState = "GC007"
    /// GC008: the policy names its subject table without a schema.
    public static let consentUnqualifiedSubjectTable: SQLState = "GC008"
    /// GC009: a consent guard (`collect: with_consent`) refused a row of a subject without consent in force.
    public static let consentRequired: SQLState = "GC009"
    /// GC010: no erasure request has that id.
    public static let requestUnknown: SQLState = "GC010"
    /// GC011: the erasure request is done or refused, so it cannot be cancelled.
    public static let requestDecided: SQLState = "GC011"
}
