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
    /// Whether the statement is prepared on the session (a named statement, `PQsendPrepare`) the first time it is
    /// sent, and executed by name from then on: the server parses and analyses it once per session instead of once
    /// per execution, and may keep one generic plan for it. For statements sent many times over, such as a batch's.
    /// The preparation goes in the same round trip as the first execution; one the server did not complete (an
    /// earlier statement of its pipeline failed, or the text has an error) is not remembered. Needs libpq 14 or
    /// later (pipeline mode); an older libpq sends the statement unprepared.
    public var prepared: Bool

    public init(_ sql: String, _ parameters: [PostgresValue] = [], prepared: Bool = false) {
        self.sql = sql
        self.parameters = parameters
        self.prepared = prepared
    }

    var preparedKey: PreparedKey { PreparedKey(sql: sql, types: parameters.map(\.typeOID)) }
}

/// A prepared statement's identity on a session: its text and its parameters' types.
struct PreparedKey: Hashable {
    var sql: String
    var types: [UInt32]
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
    /// this connection, in the same round trip, and its error, if it fails, is that call's error. `prepared`: see
    /// ``PostgresStatement/prepared``.
    public func enqueue(_ sql: String, _ parameters: [PostgresValue] = [], prepared: Bool = false) {
        queued.append(PostgresStatement(sql, parameters, prepared: prepared))
    }

    /// Sends `statement`: by name when it is prepared on this session, with its text otherwise.
    private func send(_ conn: OpaquePointer, _ statement: PostgresStatement) throws -> Bool {
        if statement.prepared, let name = preparedNames[statement.preparedKey] {
            return try Self.sendPrepared(conn, name, statement.parameters)
        }
        return try Self.sendQueryParams(conn, statement.sql, statement.parameters)
    }

    /// After `error` from prepared `statement`: a statement whose result columns changed with the schema ("cached
    /// plan must not change result type") is prepared again, under a new name, the next time.
    private func forgetPrepared(_ statement: PostgresStatement, after error: PostgresError) {
        if error.sqlState == .featureNotSupported { preparedNames[statement.preparedKey] = nil }
    }

    /// What a pipeline sent, in order: each has its own results.
    private enum Sent {
        /// The preparation, under a name, of the statement at this index of the pipeline (sent just before it).
        case preparation(PreparedKey, name: String, for: Int)
        /// The statement at this index of the pipeline.
        case statement(Int)

        /// The statement that this preparation or statement belongs to, whose SQL its errors name.
        var statementIndex: Int {
            switch self {
            case .preparation(_, _, let index), .statement(let index): index
            }
        }
    }

    func takeQueued() -> [PostgresStatement] {
        defer { queued = [] }
        return queued
    }

    /// Sends `statements` in pipeline mode and reads every result up to the pipeline's end on this thread.
    func runPipeline(
        _ statements: [PostgresStatement], timeout: Duration?, honorsTaskCancellation: Bool = true
    ) throws -> [PostgresResult] {
        let unprepared = statements.contains { $0.prepared && preparedNames[$0.preparedKey] == nil }
        guard gallra_pipelining() == 1, statements.count > 1 || unprepared else {
            // One at a time: the same results, the same first error.
            return try statements.map { statement in
                do {
                    return try run(statement.sql, timeout: timeout, honorsTaskCancellation: honorsTaskCancellation) {
                        conn in try send(conn, statement)
                    }
                } catch let error as PostgresError where statement.prepared {
                    forgetPrepared(statement, after: error)
                    throw error
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
        var sent: [Sent] = []
        sent.reserveCapacity(statements.count)
        var preparing: [PreparedKey: String] = [:]
        for (index, statement) in statements.enumerated() {
            // Parameters were checked above: a send fails only with the connection.
            if statement.prepared, preparedNames[statement.preparedKey] == nil {
                let key = statement.preparedKey
                if let name = preparing[key] {
                    // Prepared earlier in this pipeline: should that have failed, so has the pipeline.
                    guard try Self.sendPrepared(conn, name, statement.parameters) else {
                        throw connectionFailure(conn, sql: statement.sql, fallback: "could not send the statement")
                    }
                    sent.append(.statement(index))
                    continue
                }
                preparations += 1
                let name = "gallra_\(preparations)"
                preparing[key] = name
                guard Self.sendPrepare(conn, name, statement),
                    try Self.sendPrepared(conn, name, statement.parameters)
                else {
                    throw connectionFailure(conn, sql: statement.sql, fallback: "could not send the statement")
                }
                sent += [.preparation(key, name: name, for: index), .statement(index)]
                continue
            }
            guard try send(conn, statement) else {
                throw connectionFailure(conn, sql: statement.sql, fallback: "could not send the statement")
            }
            sent.append(.statement(index))
        }
        guard gallra_pipeline_sync(conn) == 1 else {
            throw connectionFailure(conn, sql: first, fallback: "could not send the statement")
        }
        roundTrips += 1
        var watch = CancelWatch(
            deadline: timeout.map { ContinuousClock.now + $0 }, honorsTaskCancellation: honorsTaskCancellation)

        try flushPending(conn, sql: first, watch: &watch)

        // Per statement or preparation sent: its results up to a NULL (the last one kept), or one
        // PGRES_PIPELINE_ABORTED when an earlier one failed; then PGRES_PIPELINE_SYNC.
        var decoded: [PostgresResult] = []
        decoded.reserveCapacity(statements.count)
        var failure: (error: PostgresError, index: Int)?
        var last: OpaquePointer?
        defer { if let last { PQclear(last) } }
        var position = 0
        func statementIndex(_ position: Int) -> Int {
            position < sent.count ? sent[position].statementIndex : statements.count - 1
        }
        readResults: while true {
            try awaitResult(conn, sql: statements[statementIndex(position)].sql, watch: &watch)
            guard PQstatus(conn) == CONNECTION_OK else { break readResults }
            guard let result = PQgetResult(conn) else {
                // The end of one statement's or preparation's results.
                if position < sent.count {
                    switch sent[position] {
                    case .preparation(let key, let name, _):
                        if let result = last, PQresultStatus(result) == PGRES_COMMAND_OK { preparedNames[key] = name }
                    case .statement(let index) where failure == nil:
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
                    case .statement: break
                    }
                }
                if let result = last { PQclear(result) }
                last = nil
                position += 1
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
                    let index = statementIndex(position)
                    var error = serverError(result, conn: conn)
                    error.query = statements[index].sql
                    failure = (error, index)
                    if case .statement = sent[min(position, sent.count - 1)], statements[index].prepared {
                        forgetPrepared(statements[index], after: error)
                    }
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
