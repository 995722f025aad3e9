import GallraCore

/// Why a ledger cannot be read, written or used, with what to do about it.
public struct LedgerError: Error, Sendable, Hashable, ExitStatusProviding {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// No ledger file at the path.
        case missing
        /// A line is not what gallra writes (a cut line, an unknown kind, a bad field): the file was altered.
        case malformed
        /// The chain the ledger holds is broken (an edited block, a gap, a wrong link).
        case broken
        /// The file or its directory cannot be read or written (EACCES, ENOSPC, EIO, ...).
        case inputOutput
        /// The ledger is another database's.
        case otherDatabase
        /// The database is older than the ledger, or has diverged from it: a restore to resolve first.
        case restoreUnresolved
        /// The audit trail the ledger would copy from is broken.
        case brokenTrail
    }

    public var kind: Kind
    /// The ledger file.
    public var path: String
    /// The line (1 is the header) the problem is on, when one is to blame.
    public var line: Int?
    /// What is wrong and what to do, in a sentence or two (never a subject key).
    public var message: String

    public init(_ kind: Kind, path: String, line: Int? = nil, _ message: String) {
        self.kind = kind
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        "ledger \(path)\(line.map { ", line \($0)" } ?? ""): \(message)"
    }

    public var exitStatus: ExitStatus {
        switch kind {
        case .missing: .noInput
        case .malformed, .broken, .brokenTrail: .dataError
        case .inputOutput: .ioError
        case .otherDatabase: .configuration
        case .restoreUnresolved: .temporaryFailure
        }
    }
}
