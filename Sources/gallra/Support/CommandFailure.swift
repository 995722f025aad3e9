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
        case let error as any ExitStatusProviding:
            self.init(error.exitStatus, error.description)
        case let error as ValidationError:
            self.init(.usage, error.message)
        default:
            self.init(.software, "internal error: \(String(describing: error))")
        }
    }

    /// A database error in the user's words: a lost connection is the server's to fix, a missing privilege the
    /// role's (with the hint where to read what it needs), anything else gallra's.
    private init(_ error: PostgresError) {
        if error.code == .connectionFailed || error.isConnectionLost {
            self.init(.unavailable, "the database connection failed: \(error.description)")
        } else if error.isInsufficientPrivilege {
            self.init(
                .configuration,
                "\(error.description)\nGrant the role gallra connects as what it needs (see the README).")
        } else {
            self.init(.software, "unexpected database error: \(error.description)")
        }
    }
}
