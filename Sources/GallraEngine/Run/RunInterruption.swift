import GallraCore
import GallraPostgres

/// A live run that the server ended (the session terminated, the connection lost, the server shutting down):
/// the report of what was done before, with outcome `interrupted`, and the error that ended it.
///
/// The batches committed before stay done; the run's row in `gallra.run` holds the outcome when a connection
/// could be opened to record it.
public struct RunInterruption: Error, Sendable, ExitStatusProviding {
    /// What the run did before the server went away.
    public var report: RunReport
    /// The error that ended the run.
    public var cause: PostgresError

    public var exitStatus: ExitStatus { cause.exitStatus }
    public var description: String { cause.description }
}
