// Pipelines: several statements sent at once and answered together, in one round trip (libpq's pipeline mode,
// `PQenterPipelineMode`, libpq 14 and later). The server runs them in order, exactly as if they came one at a time,
// until one fails: it skips the rest up to the pipeline's end (its Sync), and inside a transaction block the
// transaction is then failed, as after any failed statement. A caller that needs a statement's result before it can
// write the next sends them apart; one that does not, sends them together and waits once.
//
// A transaction's `BEGIN` and the statements of ``PostgresConnection/enqueue(_:_:)`` wait in `queued` and go ahead
// of the next statement, pipeline or `COMMIT`: their errors are that round trip's errors.
//
// With a libpq older than 14 (no pipeline mode) the statements of a pipeline go one at a time, with the same
// results and errors.
import CLibPQ
import GallraCore
import Logging
#if canImport(Glibc)
    import Glibc
#endif

/// One statement of a pipeline: its SQL and bound parameters (`$1`, `$2`, ...).
public struct PostgresStatement: Sendable {
    public var sql: String
    public var parameters: [PostgresValue]

    public init(_ sql: String, _ parameters: [PostgresValue] = []) {
        self.sql = sql
        self.parameters = parameters
    }
}

extension PostgresConnection {
    /// Runs `statements` in order, sent at once and answered together (one round trip), and returns their decoded
    /// results in the same order. The first statement that fails ends the pipeline: its error is thrown (with its
    /// `query`), and the statements after it do not run. `timeout` and task cancellation cancel the pipeline as
    /// they cancel a statement (``query(_:_:timeout:)``).
    @discardableResult
    public func pipeline(_ statements: [PostgresStatement], timeout: Duration? = nil) async throws -> [PostgresResult] {
        await waitForTurn()
        return try await withTaskCancellationHandler {
            let all = takeQueued() + statements
            return Array(try runPipeline(all, timeout: timeout).suffix(statements.count))
        } onCancel: {
            self.handle.requestCancel(logger: self.logger)
        }
    }

    /// Queues a statement whose result nobody reads: it goes ahead of the next statement, pipeline or `COMMIT` on
    /// this connection, in the same round trip, and its error, if it fails, is that call's error.
    public func enqueue(_ sql: String, _ parameters: [PostgresValue] = []) {
        queued.append(PostgresStatement(sql, parameters))
    }

    func takeQueued() -> [PostgresStatement] {
        defer { queued = [] }
        return queued
    }

    /// Sends `statements` in pipeline mode and reads every result up to the pipeline's end on this thread.
    func runPipeline(
        _ statements: [PostgresStatement], timeout: Duration?, honorsTaskCancellation: Bool = true
    ) throws -> [PostgresResult] {
        guard gallra_pipelining() == 1, statements.count > 1 else {
            // One at a time: the same results, the same first error.
            return try statements.map { statement in
                try run(statement.sql, timeout: timeout, honorsTaskCancellation: honorsTaskCancellation) { conn in
                    try Self.sendQueryParams(conn, statement.sql, statement.parameters)
                }
            }
        }
        let conn = try ensureOpen()
        for statement in statements {
            guard !statement.sql.utf8.containsNUL else {
                throw PostgresError(.clientMisuse, "the SQL text contains a NUL character")
            }
            try Self.checkParameters(statement.parameters)
        }
        handle.resetCancelRequest()
        defer { collectNotifications() }
        let first = statements[0].sql
        guard gallra_enter_pipeline_mode(conn) == 1 else {
            throw connectionFailure(conn, sql: first, fallback: "could not enter pipeline mode")
        }
        for statement in statements {
            // Parameters were checked above: a send fails only with the connection.
            guard try Self.sendQueryParams(conn, statement.sql, statement.parameters) else {
                throw connectionFailure(conn, sql: statement.sql, fallback: "could not send the statement")
            }
        }
        guard gallra_pipeline_sync(conn) == 1 else {
            throw connectionFailure(conn, sql: first, fallback: "could not send the statement")
        }
        roundTrips += 1
        var watch = CancelWatch(
            deadline: timeout.map { ContinuousClock.now + $0 }, honorsTaskCancellation: honorsTaskCancellation)

        try flushPending(conn, sql: first, watch: &watch)

        // Per statement: its results up to a NULL (the last one kept), or one PGRES_PIPELINE_ABORTED when an
        // earlier one failed; then PGRES_PIPELINE_SYNC.
        var decoded: [PostgresResult] = []
        decoded.reserveCapacity(statements.count)
        var failure: (error: PostgresError, index: Int)?
        var last: OpaquePointer?
        defer { if let last { PQclear(last) } }
        var index = 0
        readResults: while true {
            try awaitResult(conn, sql: statements[min(index, statements.count - 1)].sql, watch: &watch)
            guard PQstatus(conn) == CONNECTION_OK else { break readResults }
            guard let result = PQgetResult(conn) else {
                // The end of one statement's results.
                if index < statements.count, failure == nil {
                    if let result = last {
                        // A result that cannot be decoded fails the pipeline once every result is read.
                        do {
                            decoded.append(try decode(result, sql: statements[index].sql))
                        } catch let error as PostgresError {
                            failure = (error, index)
                        }
                    } else {
                        decoded.append(PostgresResult(columns: [], rows: [], commandTag: "", rowsAffected: 0))
                    }
                }
                if let result = last { PQclear(result) }
                last = nil
                index += 1
                continue
            }
            if gallra_is_pipeline_sync(result) == 1 {
                PQclear(result)
                break readResults
            }
            if gallra_is_pipeline_aborted(result) == 1 {
                PQclear(result)
                continue
            }
            switch PQresultStatus(result) {
            case PGRES_FATAL_ERROR:
                if failure == nil {
                    var error = serverError(result, conn: conn)
                    error.query = statements[min(index, statements.count - 1)].sql
                    failure = (error, index)
                }
                PQclear(result)
            case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
                PQclear(result)
                handle.finish()
                throw PostgresError(.clientMisuse, "COPY is not supported in a pipeline")
            default:
                if let previous = last { PQclear(previous) }
                last = result
            }
        }
        if PQstatus(conn) != CONNECTION_OK {
            var error =
                failure?.error ?? PostgresError(.connectionLost, Self.errorMessage(conn) ?? "the connection was lost")
            error.code = .connectionLost
            error.host = PQhost(conn).map { String(cString: $0) }
            error.port = PQport(conn).map { String(cString: $0) }
            error.query = error.query ?? first
            handle.finish()
            logger.debug("connection to PostgreSQL lost", metadata: ["postgres.error": "\(error)"])
            throw error
        }
        guard gallra_exit_pipeline_mode(conn) == 1 else {
            let error = connectionFailure(conn, sql: first, fallback: "could not leave pipeline mode")
            handle.finish()
            throw error
        }
        if var error = failure?.error {
            if error.sqlState == .queryCanceled {
                if watch.timedOut, let timeout {
                    error.code = .timeout
                    error.message += " (the client's timeout of \(timeout) elapsed)"
                } else if handle.cancelWasRequested || watch.cancelSent {
                    error.code = .cancelled
                    error.message += " (cancelled by the client)"
                }
            }
            throw error
        }
        return decoded
    }
}
