/// Exit statuses from sysexits.h, so that scripts and systemd can tell failures apart.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    case success = 0
    /// EX_USAGE: the command line is wrong.
    case usage = 64
    /// EX_DATAERR: the input (a policy, a document) is invalid.
    case dataError = 65
    /// EX_NOINPUT: what the command was asked about does not exist (no such subject).
    case noInput = 66
    /// EX_UNAVAILABLE: the database cannot be reached, or the connection to it was lost or shut down.
    case unavailable = 69
    /// EX_SOFTWARE: an internal error; a bug to report.
    case software = 70
    /// EX_IOERR: a file gallra must write (the erasure ledger) cannot be written.
    case ioError = 74
    /// EX_TEMPFAIL: a temporary failure; trying again later may succeed.
    case temporaryFailure = 75
    /// EX_NOPERM: the database role lacks a privilege the command needs.
    case noPermission = 77
    /// EX_CONFIG: the configuration is wrong.
    case configuration = 78

    /// The table printed in `--help` and the README.
    public static let helpText = """
        EXIT STATUS (sysexits.h):
          0   done
          64  usage error: the command line is wrong
          65  data error: invalid input, such as a policy
          66  no input: the subject asked about does not exist
          69  unavailable: the database cannot be reached or the connection was lost
          70  internal error: a bug, please report it
          74  I/O error: the erasure ledger cannot be written; the run's work is committed
          75  temporary failure: some work was refused, skipped or timed out; run again later
          77  no permission: the database role lacks a privilege
          78  configuration error: the configuration file or an option is wrong
        """
}

/// An error that knows the exit status a command ends with when it stops on it.
///
/// Its `description` is what the user reads after `gallra: `: what failed and what to do, never a value from a row.
public protocol ExitStatusProviding: Error, CustomStringConvertible {
    var exitStatus: ExitStatus { get }
}
