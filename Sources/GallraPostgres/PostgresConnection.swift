// A PostgreSQL connection through libpq.
//
// Threading: `PostgresConnection` is an actor whose executor is a dedicated thread of its own
// (`PostgresThreadExecutor`). Every libpq call on the `PGconn` happens on that thread, and all waiting is
// done there too, in `poll(2)` on `PQsocket`, using libpq's asynchronous API (`PQconnectStartParams` +
// `PQconnectPoll`, `PQsendQueryParams` + `PQflush`/`PQconsumeInput`/`PQisBusy`/`PQgetResult`, non-blocking
// mode). So a long statement parks the connection's thread, never a thread of Swift's cooperative pool, and
// because the waits are sliced (at most 250 ms) the thread also notices client timeouts and task
// cancellation by itself. Cancelling uses `PQcancel` on a `PGcancel` taken right after connecting; `PQcancel`
// is thread-safe, so `cancel()` and task-cancellation handlers call it from wherever they run.
//
// Connecting: the conninfo (key/value string or URI) goes to libpq as `dbname` with `expand_dbname=1`, so
// PGHOST, PGPORT, PGUSER, PGPASSWORD, .pgpass, PGSERVICE, sslmode, unix sockets... work as with psql.
// gallra adds `fallback_application_name=gallra` (the user's own application_name wins) and forces
// `client_encoding=UTF8` (placed after the conninfo, so it wins) because results are decoded as UTF-8.
// `connect_timeout` is honoured like libpq does it: the clock restarts for each host tried. Unlike libpq's
// blocking connect, a host that times out ends the attempt instead of moving on to the next host of a
// multi-host conninfo (libpq's asynchronous API offers no way to skip a host).
//
// Results are requested in text format; the session is set to DateStyle=ISO, IntervalStyle=iso_8601,
// extra_float_digits=3, TimeZone=UTC and bytea_output=hex right after connecting, so decoding is
// deterministic (see `PostgresValue`). Two session guards follow: `idle_in_transaction_session_timeout` (10 s by
// default, see `connect`) and `client_connection_check_interval` = 1 s where the server has it, so that a stalled or
// killed gallra does not keep its locks.
//
// Notifications (LISTEN/NOTIFY, `PostgresConnection+Notifications.swift`): waiting for one is waiting for the
// server like any other, so it happens on the connection's thread too, in the same 250 ms slices of `poll(2)` on
// `PQsocket`, followed by `PQconsumeInput` and `PQnotifies`. The cooperative pool is never parked, and task
// cancellation is seen within a slice without any wake-up machinery. Between slices the waiting task yields the
// actor, so another task's statement on the same connection runs within a slice instead of after the wait.
// Notifications can also reach us while a statement of ours runs (the server sends those that arrived during the
// transaction when it ends, possibly before the statement's ReadyForQuery), and libpq queues them in `PQgetResult`;
// each statement moves that queue into `notificationBuffer`, which `waitForNotification` and
// `pendingNotifications` hand out first, oldest first. `PGConnHandle.finish()` keeps libpq's queue before
// `PQfinish`, so a connection lost mid-statement loses none either. Like libpq's own queue, the buffer is
// unbounded: a listener is expected to consume what it subscribed to.
import CLibPQ
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore
#if canImport(Glibc)
    import Glibc
#endif
import Logging
import Synchronization

/// A connection to PostgreSQL. Statements run one at a time, on the connection's own thread.
public actor PostgresConnection {
    /// Transaction isolation levels (`BEGIN ISOLATION LEVEL ...`).
    public enum IsolationLevel: String, Sendable, CaseIterable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// How long after a cancel request the server may take to answer before the connection is given up.
    static let cancelGracePeriod: Duration = .seconds(10)
    private static let pollSlice: Duration = .milliseconds(250)
    private static let nextTransactionToken = Atomic<UInt64>(1)
    /// The transaction the current task (and its child tasks) runs in, if any.
    @TaskLocal private static var transactionToken: UInt64?

    private let executor: PostgresThreadExecutor
    let handle: PGConnHandle
    let logger: Logger
    private var activeTransaction: UInt64?
    private var waitingForTransaction: [CheckedContinuation<Void, Never>] = []
    /// Statements whose results nobody reads (a transaction's `BEGIN`, ``enqueue(_:_:)``): sent ahead of the next
    /// statement, in the same round trip (`PostgresConnection+Pipeline.swift`).
    var queued: [PostgresStatement] = []
    /// Times this connection waited for the server's answer: one per statement, one per pipeline.
    public internal(set) var roundTrips = 0
    /// The names of the statements prepared on this session (``PostgresStatement/prepared``), by text and
    /// parameter types.
    var preparedNames: [PreparedKey: String] = [:]
    /// Statements prepared on this session so far: the last one's name is `gallra_` and this number.
    var preparations = 0
    /// Notifications received and not handed out yet, oldest first (see the top of this file).
    var notificationBuffer: [PostgresNotification] = []
    /// A loss noticed while notifications were still buffered: thrown once they have been handed out.
    var notificationLoss: PostgresError?

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private init(logger: Logger) {
        self.executor = PostgresThreadExecutor(name: "gallra-postgres")
        self.handle = PGConnHandle()
        self.logger = logger
    }

    deinit {
        handle.finish()
        executor.shutdown()
    }

    /// Connects with a libpq connection string or URI, exactly as psql would; nil or empty uses libpq's defaults
    /// (environment, service file). Honours `connect_timeout` and task cancellation.
    ///
    /// `defaultConnectTimeout` bounds the attempt when neither the conninfo nor PGCONNECT_TIMEOUT sets
    /// `connect_timeout`: libpq alone would wait as long as the kernel does (minutes for a host that drops
    /// packets), and a daemon that reports its health to systemd needs an answer sooner.
    ///
    /// `password` (e.g. from a systemd credential) is passed as libpq's `password` keyword *before* the conninfo,
    /// so a password written in the conninfo still wins; nil or empty passes none (PGPASSWORD, .pgpass apply).
    ///
    /// `idleInTransactionTimeout` sets the session's `idle_in_transaction_session_timeout`: a client that stops
    /// between two statements of a transaction (stopped, frozen, or its host gone) has its session ended by the
    /// server after that long, which rolls the transaction back and frees its locks. nil leaves the server's own
    /// setting (of the role, the database or postgresql.conf).
    public static func connect(
        _ conninfo: String?,
        password: String? = nil,
        defaultConnectTimeout: Duration = .seconds(30),
        idleInTransactionTimeout: Duration? = defaultIdleInTransactionTimeout,
        logger: Logger = Logger(label: "gallra.postgres")
    ) async throws -> PostgresConnection {
        let connection = PostgresConnection(logger: logger)
        try await connection.establish(
            conninfo, password: password, defaultConnectTimeout: defaultConnectTimeout,
            idleInTransactionTimeout: idleInTransactionTimeout)
        return connection
    }

    /// gallra's `idle_in_transaction_session_timeout`: no statement of gallra's leaves its transaction idle for
    /// more than a moment (pauses and waits happen between transactions), so this only ends a stalled client.
    public static let defaultIdleInTransactionTimeout: Duration = .seconds(10)

    // MARK: - Facts

    /// Whether the connection is usable: not closed, not lost.
    public var isOpen: Bool {
        guard let conn = handle.conn else { return false }
        return PQstatus(conn) == CONNECTION_OK
    }

    /// The server version as a number, e.g. 150013 for 15.13 (`PQserverVersion`); 0 when closed.
    public var serverVersion: Int { handle.conn.map { Int(PQserverVersion($0)) } ?? 0 }

    /// A parameter the server reports (`server_version`, `application_name`, `TimeZone`, `is_superuser`, ...).
    public func parameterStatus(_ name: String) -> String? {
        guard let conn = handle.conn, let value = PQparameterStatus(conn, name) else { return nil }
        return String(cString: value)
    }

    /// The host connected to: a name, an address, or a unix-socket directory (`PQhost`).
    public var host: String { handle.conn.flatMap { PQhost($0) }.map { String(cString: $0) } ?? "" }
    /// `PQport`.
    public var port: String { handle.conn.flatMap { PQport($0) }.map { String(cString: $0) } ?? "" }
    /// `PQuser`.
    public var user: String { handle.conn.flatMap { PQuser($0) }.map { String(cString: $0) } ?? "" }
    /// `PQdb`.
    public var database: String { handle.conn.flatMap { PQdb($0) }.map { String(cString: $0) } ?? "" }
    /// The server process serving this connection (`PQbackendPID`), as `pg_backend_pid()` reports it.
    public var backendPID: Int32 { handle.conn.map { PQbackendPID($0) } ?? 0 }
    /// Whether a transaction block is open on the server (`PQtransactionStatus` is not idle).
    /// A transaction whose `BEGIN` waits to be sent with its first statement counts as open.
    public var isInTransaction: Bool {
        guard let conn = handle.conn else { return false }
        return PQtransactionStatus(conn) != PQTRANS_IDLE || !queued.isEmpty
    }

    // MARK: - Statements

    /// Runs one statement with bound parameters (`$1`, `$2`, ...) and returns its decoded result.
    ///
    /// - Parameter timeout: cancel the statement (`PQcancel`) if it runs longer; the error is then
    ///   `isQueryCanceled` with code `.timeout`. Server-side `statement_timeout`/`lock_timeout` work too.
    /// Task cancellation cancels the statement as well (code `.cancelled`). The connection stays usable after a cancel.
    ///
    /// - Parameter prepared: prepare the statement on this session the first time and execute it by name from
    ///   then on (``PostgresStatement/prepared``).
    @discardableResult
    public func query(
        _ sql: String, _ parameters: [PostgresValue] = [], timeout: Duration? = nil, prepared: Bool = false
    ) async throws -> PostgresResult {
        await waitForTurn()
        return try await withTaskCancellationHandler {
            let statements = takeQueued() + [PostgresStatement(sql, parameters, prepared: prepared)]
            return try runPipeline(statements, timeout: timeout)[statements.count - 1]
        } onCancel: {
            self.handle.requestCancel(logger: self.logger)
        }
    }

    /// Runs one statement and returns the number of rows it affected (`PQcmdTuples`).
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = [], timeout: Duration? = nil) async throws -> Int
    {
        try await query(sql, parameters, timeout: timeout).rowsAffected
    }

    /// Asks the server to cancel the statement running now, if any (`PQcancel`). Callable from any task or thread.
    /// The statement then fails with `isQueryCanceled` (code `.cancelled`); the connection stays usable.
    public nonisolated func cancel() {
        handle.requestCancel(logger: logger)
    }

    /// Runs `body` in a transaction: `COMMIT` if it returns, `ROLLBACK` if it throws anything (including
    /// cancellation). Transactions do not nest: calling this inside `body`, or with a transaction opened by hand,
    /// is a `.clientMisuse` error. Other tasks' statements on this connection wait until the transaction ends.
    public func transaction<T: Sendable>(
        isolation: IsolationLevel = .readCommitted, readOnly: Bool = false,
        _ body: @Sendable (isolated PostgresConnection) async throws -> T
    ) async throws -> T {
        if let active = activeTransaction, active == Self.transactionToken {
            throw PostgresError(.clientMisuse, "transactions do not nest: this task is already in a transaction")
        }
        await waitForTurn()
        try ensureOpen()
        if isInTransaction {
            throw PostgresError(
                .clientMisuse, "a transaction block is already open on this connection (BEGIN sent by hand?)")
        }
        let token = Self.nextTransactionToken.add(1, ordering: .relaxed).oldValue
        activeTransaction = token
        defer {
            activeTransaction = nil
            let waiting = waitingForTransaction
            waitingForTransaction = []
            for continuation in waiting { continuation.resume() }
        }
        // BEGIN goes with the transaction's first statement, in one round trip; COMMIT with the statements queued
        // last (``enqueue(_:_:)``). A transaction that sends nothing sends neither.
        let begin = "BEGIN ISOLATION LEVEL \(isolation.rawValue) \(readOnly ? "READ ONLY" : "READ WRITE")"
        queued = [PostgresStatement(begin)]
        do {
            let value = try await Self.$transactionToken.withValue(token) { try await body(self) }
            if queued.count == 1, queued[0].sql == begin {
                queued = []
                return value
            }
            let statements = takeQueued() + [PostgresStatement("COMMIT")]
            let commit = try runPipeline(statements, timeout: nil, honorsTaskCancellation: false)[statements.count - 1]
            if commit.commandTag == "ROLLBACK" {
                throw PostgresError(
                    .transactionRolledBack,
                    "the transaction was rolled back at COMMIT because a statement in it had failed")
            }
            return value
        } catch {
            queued = []
            if let conn = handle.conn, PQstatus(conn) == CONNECTION_OK, PQtransactionStatus(conn) != PQTRANS_IDLE {
                do {
                    try runInternal("ROLLBACK")
                } catch let rollbackError {
                    logger.warning(
                        "ROLLBACK failed after an error in a transaction",
                        metadata: ["error": "\(rollbackError)"])
                }
            }
            throw error
        }
    }

    /// Closes the connection (`PQfinish`). Later calls fail with `.connectionClosed`. Also done on deinit.
    public func close() {
        handle.finish()
    }

    // MARK: - Connecting

    private func establish(
        _ conninfo: String?, password: String?, defaultConnectTimeout: Duration, idleInTransactionTimeout: Duration?
    ) throws {
        var keywords = ["fallback_application_name", "client_encoding"]
        var values = ["gallra", "UTF8"]
        if let conninfo, !conninfo.isEmpty {
            keywords.insert("dbname", at: 0)  // first, so that client_encoding after it wins
            values.insert(conninfo, at: 0)
        }
        if let password, !password.isEmpty {
            // Before the expanded conninfo: libpq keeps the last value of a keyword, so the conninfo's own wins.
            keywords.insert("password", at: 0)
            values.insert(password, at: 0)
        }
        let started = withCStringArray(keywords) { keywords in
            withCStringArray(values) { values in PQconnectStartParams(keywords, values, 1) }
        }
        guard let conn = started else {
            throw PostgresError(.connectionFailed, "out of memory starting a connection")
        }
        handle.adopt(conn, logger: logger)
        do {
            try pollUntilConnected(conn, defaultConnectTimeout: defaultConnectTimeout)
            guard PQsetnonblocking(conn, 1) == 0 else {
                throw PostgresError(.connectionFailed, Self.errorMessage(conn) ?? "could not set non-blocking mode")
            }
            handle.takeCancelObject()
            let encoding = String(cString: pg_encoding_to_char(PQclientEncoding(conn)))
            guard encoding == "UTF8" else {
                throw PostgresError(.connectionFailed, "client_encoding is \(encoding), gallra needs UTF8")
            }
            try runInternal(
                "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 3; "
                    + "SET TimeZone = 'UTC'; SET bytea_output = 'hex'")
            // A statement whose client has gone (killed) stops within a second instead of running to its end
            // holding its locks. PostgreSQL 14+ on Linux only: elsewhere the setting is absent or refused, and the
            // session goes on without it. The block runs without a statement timeout (a tiny one from PGOPTIONS or
            // the role would cancel it and so the connection); RESET then restores the session's own.
            try runInternal(
                "SET statement_timeout = 0; "
                    + "DO $$ BEGIN PERFORM set_config('client_connection_check_interval', '1s', false); "
                    + "EXCEPTION WHEN OTHERS THEN NULL; END $$; RESET statement_timeout")
            if let idleInTransactionTimeout {
                let milliseconds = max(
                    1,
                    idleInTransactionTimeout.components.seconds * 1000
                        + idleInTransactionTimeout.components.attoseconds / 1_000_000_000_000_000)
                try runInternal("SET idle_in_transaction_session_timeout = \(milliseconds)")
            }
        } catch var error as PostgresError {
            if error.code != .cancelled { error.code = .connectionFailed }
            error.host = error.host ?? PQhost(conn).map { String(cString: $0) }
            error.port = error.port ?? PQport(conn).map { String(cString: $0) }
            handle.finish()
            throw error
        }
        logger.debug(
            "connected to PostgreSQL",
            metadata: [
                "postgres.host": "\(host)", "postgres.port": "\(port)", "postgres.database": "\(database)",
                "postgres.server": "\(parameterStatus("server_version") ?? "?")",
            ])
    }

    private func pollUntilConnected(_ conn: OpaquePointer, defaultConnectTimeout: Duration) throws {
        let timeout = Self.connectTimeout(conn, default: defaultConnectTimeout)
        var target = Self.target(conn)
        var deadline = timeout.map { ContinuousClock.now + $0 }
        var status = PGRES_POLLING_WRITING
        while status != PGRES_POLLING_OK {
            guard status != PGRES_POLLING_FAILED else {
                let message = Self.errorMessage(conn) ?? "connection failed"
                throw PostgresError(
                    .connectionFailed, message, sqlState: PostgresError.startupRefusalState(message: message))
            }
            let events = Int16(status == PGRES_POLLING_READING ? POLLIN : POLLOUT)
            while try !Self.waitForSocket(conn, events: events, until: deadline) {
                if Task.isCancelled {
                    throw PostgresError(.cancelled, "connecting was cancelled")
                }
                if let deadline, ContinuousClock.now >= deadline, let timeout {
                    throw PostgresError(
                        .connectionFailed,
                        "timeout expired: no answer within connect_timeout (\(timeout.components.seconds) s)")
                }
            }
            status = PQconnectPoll(conn)
            let now = Self.target(conn)
            if now != target, let timeout {  // libpq moved on to the next host or address: restart the clock
                target = now
                deadline = ContinuousClock.now + timeout
            }
        }
    }

    /// `connect_timeout` as libpq reads it (conninfo, PGCONNECT_TIMEOUT): unset means `defaultConnectTimeout`,
    /// 0 or less waits forever, and 1 means 2 s (as in libpq).
    private static func connectTimeout(_ conn: OpaquePointer, default defaultConnectTimeout: Duration) -> Duration? {
        guard let options = PQconninfo(conn) else { return defaultConnectTimeout }
        defer { PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "connect_timeout" {
                guard let value = option.pointee.val else { return defaultConnectTimeout }
                let text = String(cString: value).trimmingWhitespace()
                if text.isEmpty { return defaultConnectTimeout }
                guard let seconds = Int(text), seconds > 0 else { return nil }
                return .seconds(max(seconds, 2))
            }
            option += 1
        }
        return defaultConnectTimeout
    }

    private static func target(_ conn: OpaquePointer) -> String {
        (PQhost(conn).map { String(cString: $0) } ?? "") + ":" + (PQport(conn).map { String(cString: $0) } ?? "")
    }

    // MARK: - Running statements

    /// Waits while another task's transaction holds the connection.
    func waitForTurn() async {
        while let active = activeTransaction, active != Self.transactionToken {
            await withCheckedContinuation { waitingForTransaction.append($0) }
        }
    }

    @discardableResult
    func ensureOpen() throws -> OpaquePointer {
        guard let conn = handle.conn else {
            throw PostgresError(.connectionClosed, "the connection is closed")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            var error = PostgresError(.connectionLost, Self.errorMessage(conn) ?? "the connection was lost")
            error.host = PQhost(conn).map { String(cString: $0) }
            error.port = PQport(conn).map { String(cString: $0) }
            throw error
        }
        return conn
    }

    /// A statement of gallra's own (session setup, BEGIN, COMMIT, ROLLBACK): simple protocol, no timeout, and
    /// not cancelled by task cancellation, so that a cancelled transaction still rolls back.
    @discardableResult
    private func runInternal(_ sql: String) throws -> PostgresResult {
        try run(sql, timeout: nil, honorsTaskCancellation: false) { conn in
            guard PQsendQuery(conn, sql) == 1 else { return false }
            return true
        }
    }

    /// Refuses what PostgreSQL cannot take as parameters: more than 65535, or text holding a NUL.
    static func checkParameters(_ parameters: [PostgresValue]) throws {
        guard parameters.count <= Int(UInt16.max) else {
            throw PostgresError(.clientMisuse, "too many parameters (\(parameters.count)); PostgreSQL allows 65535")
        }
        for (index, parameter) in parameters.enumerated() {
            if case .text(let text) = parameter.parameter, text.utf8.containsNUL {
                throw PostgresError(
                    .clientMisuse, "parameter $\(index + 1) contains a NUL character, which PostgreSQL cannot store")
            }
        }
    }

    static func sendQueryParams(_ conn: OpaquePointer, _ sql: String, _ parameters: [PostgresValue]) throws
        -> Bool
    {
        try withParameters(parameters) { types, values, lengths, formats in
            PQsendQueryParams(conn, sql, Int32(parameters.count), types, values, lengths, formats, 0) == 1
        }
    }

    /// Executes the statement prepared as `name` (``prepare(_:_:_:)``) with `parameters`.
    static func sendPrepared(_ conn: OpaquePointer, _ name: String, _ parameters: [PostgresValue]) throws -> Bool {
        try withParameters(parameters) { _, values, lengths, formats in
            PQsendQueryPrepared(conn, name, Int32(parameters.count), values, lengths, formats, 0) == 1
        }
    }

    /// Prepares `statement` as `name`, with its parameters' types.
    static func sendPrepare(_ conn: OpaquePointer, _ name: String, _ statement: PostgresStatement) -> Bool {
        let types = statement.parameters.map(\.typeOID)
        return PQsendPrepare(conn, name, statement.sql, Int32(types.count), types) == 1
    }

    /// `parameters` as libpq takes them: type OIDs, values (text NUL-terminated, bytea binary), lengths, formats.
    private static func withParameters<R>(
        _ parameters: [PostgresValue],
        _ body: (_ types: [Oid], _ values: [UnsafePointer<CChar>?], _ lengths: [Int32], _ formats: [Int32]) -> R
    ) throws -> R {
        guard parameters.count <= Int(UInt16.max) else {
            throw PostgresError(.clientMisuse, "too many parameters (\(parameters.count)); PostgreSQL allows 65535")
        }
        var types: [Oid] = []
        var values: [UnsafePointer<CChar>?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        var buffers: [UnsafeMutableRawPointer] = []
        defer { buffers.forEach { $0.deallocate() } }
        for (index, parameter) in parameters.enumerated() {
            types.append(parameter.typeOID)
            switch parameter.parameter {
            case .null:
                values.append(nil)
                lengths.append(0)
                formats.append(0)
            case .text(let text):
                guard !text.utf8.containsNUL else {
                    throw PostgresError(
                        .clientMisuse, "parameter $\(index + 1) contains a NUL character, which PostgreSQL cannot store"
                    )
                }
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: text.utf8.count + 1, alignment: 1)
                buffers.append(buffer)
                let bytes = buffer.bindMemory(to: UInt8.self, capacity: text.utf8.count + 1)
                let copied: Void? = text.utf8.withContiguousStorageIfAvailable { utf8 in
                    if let base = utf8.baseAddress { bytes.update(from: base, count: utf8.count) }
                }
                if copied == nil {
                    _ = UnsafeMutableBufferPointer(start: bytes, count: text.utf8.count).initialize(from: text.utf8)
                }
                bytes[text.utf8.count] = 0
                values.append(UnsafePointer(buffer.assumingMemoryBound(to: CChar.self)))
                lengths.append(0)
                formats.append(0)
            case .binary(let data):
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(data.count, 1), alignment: 1)
                buffers.append(buffer)
                data.withUnsafeBytes { bytes in
                    if let base = bytes.baseAddress { buffer.copyMemory(from: base, byteCount: bytes.count) }
                }
                values.append(UnsafePointer(buffer.assumingMemoryBound(to: CChar.self)))
                lengths.append(Int32(data.count))
                formats.append(1)
            }
        }
        return body(types, values, lengths, formats)
    }

    /// Sends a statement with `send`, waits for all its results on this thread, and decodes the last one.
    func run(
        _ sql: String, timeout: Duration?, honorsTaskCancellation: Bool,
        send: (OpaquePointer) throws -> Bool
    ) throws -> PostgresResult {
        let conn = try ensureOpen()
        guard !sql.utf8.containsNUL else {
            throw PostgresError(.clientMisuse, "the SQL text contains a NUL character")
        }
        handle.resetCancelRequest()
        // Notifications that arrive while the statement runs (queued by libpq during PQgetResult), kept for
        // waitForNotification; also when the statement fails or the connection is lost meanwhile.
        defer { collectNotifications() }
        guard try send(conn) else {
            throw connectionFailure(conn, sql: sql, fallback: "could not send the statement")
        }
        roundTrips += 1
        var watch = CancelWatch(
            deadline: timeout.map { ContinuousClock.now + $0 }, honorsTaskCancellation: honorsTaskCancellation)

        try flushPending(conn, sql: sql, watch: &watch)

        var results: [OpaquePointer] = []
        defer { results.forEach { PQclear($0) } }
        readResults: while true {
            try awaitResult(conn, sql: sql, watch: &watch)
            guard let result = PQgetResult(conn) else { break readResults }
            switch PQresultStatus(result) {
            case PGRES_COPY_IN:
                PQclear(result)
                _ = PQputCopyEnd(conn, "gallra does not stream COPY FROM STDIN")
            case PGRES_COPY_OUT:
                PQclear(result)
                try drainCopyOut(conn, watch: &watch)
            case PGRES_COPY_BOTH:
                PQclear(result)
                handle.finish()
                throw PostgresError(.clientMisuse, "COPY BOTH (replication) is not supported on this connection")
            default:
                results.append(result)
            }
        }

        let firstError = results.first { PQresultStatus($0) == PGRES_FATAL_ERROR }
        if PQstatus(conn) != CONNECTION_OK {
            var error =
                firstError.map { serverError($0, conn: conn) }
                ?? PostgresError(.connectionLost, Self.errorMessage(conn) ?? "the connection was lost")
            error.code = .connectionLost
            error.host = PQhost(conn).map { String(cString: $0) }
            error.port = PQport(conn).map { String(cString: $0) }
            error.query = sql
            handle.finish()
            logger.debug("connection to PostgreSQL lost", metadata: ["postgres.error": "\(error)"])
            throw error
        }
        if let firstError {
            var error = serverError(firstError, conn: conn)
            error.query = sql
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
        guard let last = results.last else {
            return PostgresResult(columns: [], rows: [], commandTag: "", rowsAffected: 0)
        }
        return try decode(last, sql: sql)
    }

    /// Reads and discards `COPY ... TO STDOUT` data: rows never travel through gallra.
    private func drainCopyOut(_ conn: OpaquePointer, watch: inout CancelWatch) throws {
        while true {
            var buffer: UnsafeMutablePointer<CChar>?
            let count = PQgetCopyData(conn, &buffer, 1)
            if let buffer { PQfreemem(buffer) }
            if count > 0 { continue }
            if count < 0 { return }  // -1 done, -2 error: PQgetResult reports it
            if try Self.waitForSocket(conn, events: Int16(POLLIN), until: watch.nextWake) {
                guard PQconsumeInput(conn) == 1 else { return }
            }
            try watch.check(handle, logger: logger)
        }
    }

    /// Sends what libpq could not write yet (non-blocking mode), reading meanwhile so the server never stalls;
    /// `sql` names the statement in a failure.
    func flushPending(_ conn: OpaquePointer, sql: String, watch: inout CancelWatch) throws {
        while true {
            let flushed = PQflush(conn)
            if flushed == 0 { return }
            guard flushed > 0 else { throw connectionFailure(conn, sql: sql, fallback: "could not send the statement") }
            if try Self.waitForSocket(conn, events: Int16(POLLIN | POLLOUT), until: watch.nextWake) {
                guard PQconsumeInput(conn) == 1 else { return }
            }
            try watch.check(handle, logger: logger)
        }
    }

    /// Waits until libpq has a result to give (or the connection is lost: `PQgetResult` then reports it), checking
    /// for a cancellation or a timeout meanwhile; a cancellation that gives up on the server closes the
    /// connection and throws, naming `sql`.
    func awaitResult(_ conn: OpaquePointer, sql: String, watch: inout CancelWatch) throws {
        while PQisBusy(conn) == 1 {
            guard PQstatus(conn) == CONNECTION_OK else { return }
            if try Self.waitForSocket(conn, events: Int16(POLLIN), until: watch.nextWake) {
                guard PQconsumeInput(conn) == 1 else { return }  // lost: PQgetResult reports it
            }
            do {
                try watch.check(handle, logger: logger)
            } catch var error as PostgresError {
                handle.finish()
                error.query = sql
                throw error
            }
        }
    }

    /// Waits until the socket is ready for `events` or `deadline` (capped to one poll slice) passes.
    /// True when ready. Throws `.connectionLost` if there is no socket.
    static func waitForSocket(_ conn: OpaquePointer, events: Int16, until deadline: ContinuousClock.Instant?)
        throws -> Bool
    {
        let socket = PQsocket(conn)
        guard socket >= 0 else {
            throw PostgresError(.connectionLost, errorMessage(conn) ?? "the connection has no socket")
        }
        let sliceEnd = ContinuousClock.now + pollSlice
        let wakeAt = deadline.map { min($0, sliceEnd) } ?? sliceEnd
        let remaining = ContinuousClock.now.duration(to: wakeAt)
        let milliseconds = max(
            0, Int32(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        let ready = poll(&descriptor, 1, milliseconds)
        if ready < 0 && errno != EINTR {
            throw PostgresError(.connectionLost, "poll() failed: \(String(cString: strerror(errno)))")
        }
        return ready > 0
    }

    // MARK: - Results and errors

    func decode(_ result: OpaquePointer, sql: String) throws -> PostgresResult {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { index in
            PostgresColumn(
                name: PQfname(result, Int32(index)).map { String(cString: $0) } ?? "?column?",
                typeOID: PQftype(result, Int32(index)))
        }
        var rows: [PostgresRow] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<Int32(rowCount) {
            var values: [PostgresValue] = []
            values.reserveCapacity(columnCount)
            for (index, column) in columns.enumerated() {
                let field = Int32(index)
                if PQgetisnull(result, row, field) == 1 {
                    values.append(.null)
                    continue
                }
                let start = UnsafeRawPointer(PQgetvalue(result, row, field)).map {
                    $0.assumingMemoryBound(to: UInt8.self)
                }
                let bytes = UnsafeBufferPointer(start: start, count: Int(PQgetlength(result, row, field)))
                guard let value = PostgresValue.decode(text: bytes, typeOID: column.typeOID) else {
                    var error = PostgresError(
                        .decoding,
                        "could not decode column \"\(column.name)\" (type OID \(column.typeOID)) from its text; "
                            + "was DateStyle, IntervalStyle or bytea_output changed in this session?")
                    error.query = sql
                    throw error
                }
                values.append(value)
            }
            rows.append(PostgresRow(columns: columns, values: values))
        }
        let tag = PQcmdStatus(result).map { String(cString: $0) } ?? ""
        let affected = PQcmdTuples(result).flatMap { Int(String(cString: $0)) } ?? 0
        return PostgresResult(columns: columns, rows: rows, commandTag: tag, rowsAffected: affected)
    }

    func serverError(_ result: OpaquePointer, conn: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let ascii = code.asciiValue, let value = PQresultErrorField(result, Int32(ascii)) else { return nil }
            return String(cString: value)
        }
        let fallback = PQresultErrorMessage(result).map { Self.trimmed(String(cString: $0)) } ?? "unknown error"
        var error = PostgresError(.server, field("M") ?? fallback, sqlState: field("C").map(SQLState.init(rawValue:)))
        error.severity = field("V") ?? field("S")
        error.detail = field("D")
        error.hint = field("H")
        error.context = field("W")
        error.position = field("P").flatMap { Int($0) }
        error.schemaName = field("s")
        error.tableName = field("t")
        error.columnName = field("c")
        error.dataTypeName = field("d")
        error.constraintName = field("n")
        return error
    }

    func connectionFailure(_ conn: OpaquePointer, sql: String, fallback: String) -> PostgresError {
        let lost = PQstatus(conn) != CONNECTION_OK
        var error = PostgresError(lost ? .connectionLost : .clientMisuse, Self.errorMessage(conn) ?? fallback)
        error.query = sql
        if lost {
            error.host = PQhost(conn).map { String(cString: $0) }
            error.port = PQport(conn).map { String(cString: $0) }
            handle.finish()
        }
        return error
    }

    static func errorMessage(_ conn: OpaquePointer) -> String? {
        guard let message = PQerrorMessage(conn) else { return nil }
        let text = trimmed(String(cString: message))
        return text.isEmpty ? nil : text
    }

    /// libpq messages end in newlines and may span lines; one line reads better in a log.
    static func trimmed(_ message: String) -> String {
        message.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }
            .filter { !$0.isEmpty }.joined(separator: "; ")
    }
}

/// Decides when to send a cancel request while waiting for a statement, and when to give up on the server.
struct CancelWatch {
    let deadline: ContinuousClock.Instant?
    let honorsTaskCancellation: Bool
    private(set) var timedOut = false
    private(set) var cancelSent = false
    private var giveUpAt: ContinuousClock.Instant?

    init(deadline: ContinuousClock.Instant?, honorsTaskCancellation: Bool) {
        self.deadline = deadline
        self.honorsTaskCancellation = honorsTaskCancellation
    }

    /// When the waiting thread must next look at the clock.
    var nextWake: ContinuousClock.Instant? { cancelSent ? giveUpAt : deadline }

    mutating func check(_ handle: PGConnHandle, logger: Logger) throws {
        let now = ContinuousClock.now
        if !cancelSent {
            if let deadline, now >= deadline {
                timedOut = true
            } else if !(honorsTaskCancellation && Task.isCancelled) {
                return
            }
            // Also after a cancellation handler's request: it may have raced ahead of the statement being sent.
            cancelSent = true
            giveUpAt = now + PostgresConnection.cancelGracePeriod
            handle.sendCancel(logger: logger)
        } else if let giveUpAt, now >= giveUpAt {
            throw PostgresError(
                .connectionLost,
                "the server did not answer a cancel request within \(PostgresConnection.cancelGracePeriod); "
                    + "the connection was closed", sqlState: .queryCanceled)
        }
    }
}

/// Owns the `PGconn`, its `PGcancel` and the notice receiver's context; finishes the connection exactly once.
final class PGConnHandle: @unchecked Sendable {
    // `conn`, `notices` and `keptNotifications` are touched only on the connection's thread (or in deinit).
    // `cancel` is shared with other threads through the mutex, which keeps `PQfreeCancel` from racing a `PQcancel`.
    private(set) var conn: OpaquePointer?
    private var notices: Unmanaged<NoticeReceiver>?
    /// libpq's queue of notifications as it was when the connection was finished.
    private var keptNotifications: [PostgresNotification] = []
    private let cancel = Mutex<CancelState>(CancelState())

    private struct CancelState: @unchecked Sendable {
        var object: OpaquePointer?
        var requested = false
    }

    deinit { finish() }

    func adopt(_ conn: OpaquePointer, logger: Logger) {
        self.conn = conn
        let receiver = Unmanaged.passRetained(NoticeReceiver(logger: logger))
        notices = receiver
        PQsetNoticeReceiver(conn, noticeCallback, receiver.toOpaque())
    }

    func takeCancelObject() {
        guard let conn else { return }
        let object = PQgetCancel(conn)
        cancel.withLock { $0.object = object }
    }

    func resetCancelRequest() {
        cancel.withLock { $0.requested = false }
    }

    var cancelWasRequested: Bool { cancel.withLock { $0.requested } }

    /// A cancel asked for by a caller (`cancel()` or task cancellation), remembered for the error's code.
    func requestCancel(logger: Logger) {
        cancel.withLock { $0.requested = true }
        sendCancel(logger: logger)
    }

    func sendCancel(logger: Logger) {
        var message: String?
        cancel.withLock { state in
            guard let object = state.object else { return }
            var buffer = [CChar](repeating: 0, count: 256)
            if PQcancel(object, &buffer, Int32(buffer.count)) == 0 {
                message = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        if let message {
            logger.warning("could not send a cancel request to PostgreSQL", metadata: ["postgres.error": "\(message)"])
        }
    }

    /// The notifications libpq has received and not handed out yet (`PQnotifies`), oldest first, including
    /// those it held when the connection was finished.
    func takeNotifications() -> [PostgresNotification] {
        var taken = keptNotifications
        keptNotifications = []
        if let conn { taken += Self.drainNotifies(conn) }
        return taken
    }

    private static func drainNotifies(_ conn: OpaquePointer) -> [PostgresNotification] {
        var drained: [PostgresNotification] = []
        while let notify = PQnotifies(conn) {
            defer { PQfreemem(notify) }
            drained.append(
                PostgresNotification(
                    channel: notify.pointee.relname.map { String(cString: $0) } ?? "",
                    payload: notify.pointee.extra.map { String(cString: $0) } ?? "",
                    backendPID: notify.pointee.be_pid))
        }
        return drained
    }

    func finish() {
        cancel.withLock { state in
            if let object = state.object { PQfreeCancel(object) }
            state.object = nil
        }
        if let conn {
            keptNotifications += Self.drainNotifies(conn)
            PQfinish(conn)
            self.conn = nil
        }
        notices?.release()
        notices = nil
    }
}

/// Receives the server's NOTICE, WARNING, INFO, DEBUG and LOG messages and logs them, never to stderr.
/// Only the primary message and SQLSTATE are logged: DETAIL and HINT can carry row values.
final class NoticeReceiver: @unchecked Sendable {
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func receive(_ result: OpaquePointer) {
        func field(_ code: Character) -> String? {
            guard let ascii = code.asciiValue, let value = PQresultErrorField(result, Int32(ascii)) else { return nil }
            return String(cString: value)
        }
        let severity = field("V") ?? field("S") ?? "NOTICE"
        let level: Logger.Level =
            switch severity {
            case "WARNING": .warning
            case "NOTICE": .notice
            case "INFO", "LOG": .info
            default: .debug
            }
        logger.log(
            level: level, "PostgreSQL \(severity): \(field("M") ?? "")",
            metadata: ["postgres.sqlstate": "\(field("C") ?? "")"])
    }
}

private let noticeCallback: PQnoticeReceiver = { context, result in
    guard let context, let result else { return }
    Unmanaged<NoticeReceiver>.fromOpaque(context).takeUnretainedValue().receive(result)
}

/// Calls `body` with a NULL-terminated `const char *const *` array of `strings`.
private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

extension String.UTF8View {
    /// Whether the text holds a NUL byte: `memchr` over the string's UTF-8 storage (parameters can be megabytes).
    var containsNUL: Bool {
        let found = withContiguousStorageIfAvailable { utf8 in
            guard let base = utf8.baseAddress else { return false }
            return memchr(base, 0, utf8.count) != nil
        }
        return found ?? contains(0)
    }
}
