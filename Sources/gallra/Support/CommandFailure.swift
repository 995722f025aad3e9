import ArgumentParser
import GallraCore
import GallraEngine
import GallraPostgres

/// A failure the user can act on: the message says what failed and what to do.
struct CommandFailure: ExitStatusProviding {
    let exitStatus: ExitStatus
    let message: String

    init(_ status: ExitStatus, _ message: String) {
        self.exitStatus = status
        self.message = message
    }

    var description: String { message }
}

extension AsyncParsableCommand {
    /// Runs `body`, turning a `CommandFailure` into its message on stderr and its exit status.
    func reportingFailures(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            let failure = CommandFailure(error)
            StandardError.write("gallra: \(failure.message)\n")
            throw ExitCode(failure.exitStatus.rawValue)
        }
    }
}

extension CommandFailure {
    /// The exit status and message for any error a command lets through: errors carry their own status
    /// (``ExitStatusProviding``). Messages are the errors' descriptions, which never carry row values.
    init(_ error: any Error) {
        switch error {
        case let failure as CommandFailure:
            self = failure
        case let error as PostgresError:
            self.init(error)
        case let interruption as RunInterruption:
            self.init(interruption.cause)
        case let error as any ExitStatusProviding:
            self.init(error.exitStatus, error.description)
        case let error as ValidationError:
            self.init(.usage, error.message)
        default:
            self.init(.software, "internal error: \(String(describing: error))")
        }
    }

    /// A database error in the user's words, with its status (``PostgresError/exitStatus``): what happened and
    /// what to do. Only an error outside the routine classes is gallra's own, "unexpected".
    private init(_ error: PostgresError) {
        let status = error.exitStatus
        if error.code == .connectionFailed {
            self.init(status, "the database connection failed: \(error.description)")
        } else if let advice = Self.advice(status, sqlState: error.sqlState) {
            self.init(status, "\(error.description)\n\(advice)")
        } else {
            self.init(status, "unexpected database error: \(error.description)")
        }
    }

    /// What to do about a database error of `status` (and `sqlState`, when the server sent one); nil for an
    /// unexpected one.
    static func advice(_ status: ExitStatus, sqlState: SQLState?) -> String? {
        switch status {
        case .unavailable:
            return "The connection to the database was lost or the server is shutting down or starting; run again "
                + "once the server is back (work committed before stays done)."
        case .noPermission:
            return "Grant the role gallra connects as the privilege it lacks (see the README)."
        case .temporaryFailure:
            switch sqlState {
            case .readOnlySQLTransaction?:
                return "The server refused a write in a read-only transaction (a standby, or "
                    + "default_transaction_read_only is on): run this on the primary."
            case .lockNotAvailable?, .deadlockDetected?, .serializationFailure?:
                return "Another transaction held the rows; run again later."
            default:
                return "A statement timed out or was cancelled; run again later, or raise the statement timeout."
            }
        case .success, .usage, .dataError, .noInput, .software, .configuration, .ioError:
            return nil
        }
    }
}
