import ArgumentParser
import GallraCore
import GallraEngine
import GallraPostgres

/// A failure the user can act on: the message says what failed and what to do.
struct CommandFailure: Error, CustomStringConvertible {
    let status: ExitStatus
    let message: String

    init(_ status: ExitStatus, _ message: String) {
        self.status = status
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
            throw ExitCode(failure.status.rawValue)
        }
    }
}

extension CommandFailure {
    /// The exit status and message for any error a command lets through. Messages are the errors'
    /// descriptions, which never carry row values.
    init(_ error: any Error) {
        switch error {
        case let failure as CommandFailure:
            self = failure
        case let error as PostgresError where error.code == .connectionFailed || error.isConnectionLost:
            self.init(.unavailable, "the database connection failed: \(error.description)")
        case let error as PostgresError where error.isInsufficientPrivilege:
            self.init(
                .configuration,
                "\(error.description)\nGrant the role gallra connects as what it needs (see the README).")
        case let error as PostgresError:
            self.init(.software, "unexpected database error: \(error.description)")
        case let error as SchemaError:
            self.init(.configuration, error.description)
        case let error as UnknownPolicyError:
            self.init(.dataError, error.description)
        case let error as PolicyStoreError:
            self.init(.dataError, error.description)
        case let error as AuditTrailError:
            self.init(.dataError, error.description)
        case let error as ValidationError:
            self.init(.usage, error.message)
        default:
            self.init(.software, "internal error: \(String(describing: error))")
        }
    }
}
