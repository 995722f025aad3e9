import GallraCore

/// Everything that can go wrong talking to PostgreSQL, with the server's fields kept.
///
/// `description` is generic on purpose: severity, SQLSTATE, the primary message and the names of the schema,
/// table, column, type and constraint, or for connection errors the target and libpq's message. It never
/// includes DETAIL, HINT, CONTEXT or the SQL text, which can carry row values (`Key (email)=(alice@x) already
/// exists`); for data exceptions (class 22), whose primary messages echo the rejected input, quoted parts are
/// elided. The full error is in `debugDescription` (`String(reflecting:)`), for debugging only.
public struct PostgresError: Error, Sendable, ExitStatusProviding, CustomDebugStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Hashable, CustomStringConvertible {
        /// The connection could not be established.
        case connectionFailed
        /// The connection broke (server terminated the backend, network failure); the connection is now closed.
        case connectionLost
        /// The connection was closed by ``PostgresConnection/close()`` before this call.
        case connectionClosed
        /// The server reported an error; see ``PostgresError/sqlState``.
        case server
        /// The client-side `timeout:` of the statement (or of connecting) elapsed; the statement was cancelled.
        case timeout
        /// The statement was cancelled on the client's request: ``PostgresConnection/cancel()`` or Swift task
        /// cancellation.
        case cancelled
        /// The API was used in a way that cannot work (nested transaction, NUL in text, ...).
        case clientMisuse
        /// A result value could not be decoded as its column type, or as the Swift type asked for.
        case decoding
        /// `COMMIT` ended in a rollback because the transaction had failed earlier.
        case transactionRolledBack

        public var description: String { rawValue }
    }

    public var code: Code
    /// The SQLSTATE (`23505`), from the server or libpq.
    public var sqlState: SQLState?
    /// `ERROR`, `FATAL`, `PANIC` (not localized).
    public var severity: String?
    /// The primary message: the server's, libpq's, or gallra's.
    public var message: String
    /// The server's DETAIL. May contain row values: never log it.
    public var detail: String?
    /// The server's HINT. May contain row values: never log it.
    public var hint: String?
    /// The server's CONTEXT (call stack of functions, statements). May contain values: never log it.
    public var context: String?
    /// 1-based character position of the error in the SQL text.
    public var position: Int?
    public var schemaName: String?
    public var tableName: String?
    public var columnName: String?
    public var dataTypeName: String?
    public var constraintName: String?
    /// The server the connection was to (connection errors and errors on a connection).
    public var host: String?
    public var port: String?
    /// The SQL text of the failed statement (parameters are never part of it); only in `debugDescription`.
    public var query: String?

    public init(_ code: Code, _ message: String, sqlState: SQLState? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    // MARK: Classification

    /// The SQLSTATE of the server's refusal of a new session, read from libpq's message: libpq keeps the message
    /// of an error during start-up but not its fields. The server's English texts only (`lc_messages` of the
    /// server); another language leaves the state unknown.
    static func startupRefusalState(message: String) -> SQLState? {
        func names(_ what: String) -> Bool {
            guard let start = message.firstRange(of: "FATAL:  \(what) \"") else { return false }
            return message[start.upperBound...].contains("\" does not exist")
        }
        if message.contains("FATAL:  password authentication failed") { return .invalidPassword }
        if message.contains("FATAL:  permission denied for database") { return .insufficientPrivilege }
        if names("database") { return .invalidCatalogName }
        if names("role") || message.contains("FATAL:  no pg_hba.conf entry")
            || message.contains(" authentication failed for user")
        {
            return .invalidAuthorizationSpecification
        }
        return nil
    }

    public var isConnectionLost: Bool { code == .connectionLost }
    /// 57014: cancelled by `cancel()`, task cancellation, the client timeout, `statement_timeout` or `pg_cancel_backend`.
    public var isQueryCanceled: Bool { sqlState == .queryCanceled || code == .timeout || code == .cancelled }
    /// The statement was cancelled because the client-side `timeout:` elapsed.
    public var isClientTimeout: Bool { code == .timeout }
    /// 55P03, e.g. `lock_timeout` or `NOWAIT`.
    public var isLockNotAvailable: Bool { sqlState == .lockNotAvailable }
    /// 40001.
    public var isSerializationFailure: Bool { sqlState == .serializationFailure }
    /// 40P01.
    public var isDeadlock: Bool { sqlState == .deadlockDetected }
    /// 23505.
    public var isUniqueViolation: Bool { sqlState == .uniqueViolation }
    /// 23503.
    public var isForeignKeyViolation: Bool { sqlState == .foreignKeyViolation }
    /// 42P01.
    public var isUndefinedTable: Bool { sqlState == .undefinedTable }
    /// 42703.
    public var isUndefinedColumn: Bool { sqlState == .undefinedColumn }
    /// 42501.
    public var isInsufficientPrivilege: Bool { sqlState == .insufficientPrivilege }
    /// 25006: a write in a `READ ONLY` transaction.
    public var isReadOnlyTransaction: Bool { sqlState == .readOnlySQLTransaction }
    /// Worth retrying the whole transaction later: lock not available, serialization failure, deadlock.
    public var isRetryable: Bool { isLockNotAvailable || isSerializationFailure || isDeadlock }
    /// The server cannot be reached or is going away: no connection, a lost or closed one, a connection
    /// exception (class 08), or the server shutting down, crashed or not accepting connections yet (57P01,
    /// 57P02, 57P03). Worth connecting again later, unlike an error in what was asked.
    public var isServerUnavailable: Bool {
        switch code {
        case .connectionFailed, .connectionLost, .connectionClosed:
            return true
        case .server, .timeout, .cancelled, .clientMisuse, .decoding, .transactionRolledBack:
            guard let sqlState else { return false }
            return [.adminShutdown, .crashShutdown, .cannotConnectNow].contains(sqlState)
                || sqlState.errorClass == .connectionException
        }
    }

    /// Class 53: the server ran short of disk (53100), memory (53200), connections (53300) or a configured
    /// limit (53400).
    public var isResourceShortage: Bool { sqlState?.errorClass == .insufficientResources }
    /// Worth running again later as it is: a statement timeout or cancellation (57014), a lock not available
    /// (55P03), a deadlock (40P01), a serialization failure (40001), a write refused by a read-only
    /// transaction (25006: a standby, or `default_transaction_read_only`), or the server short of a resource
    /// (class 53: disk, memory, connections), which its operator frees without any change to gallra.
    public var isTemporary: Bool { isRetryable || isQueryCanceled || isReadOnlyTransaction || isResourceShortage }

    /// The sysexits status of a command that stops on this error: 69 when the server cannot be reached or went
    /// away, 77 for a missing privilege, 75 for a temporary refusal; anything else is unexpected (70).
    public var exitStatus: ExitStatus {
        if isServerUnavailable { return .unavailable }
        if isInsufficientPrivilege { return .noPermission }
        if isTemporary { return .temporaryFailure }
        return .software
    }

    // MARK: Text

    public var description: String {
        var text = "PostgreSQL"
        if let severity { text += " \(severity)" }
        if let sqlState { text += " \(sqlState)" }
        if code != .server { text += " [\(code)]" }
        text += ": " + (sqlState?.errorClass == .dataException ? Self.elidingQuotedParts(message) : message)
        var names: [String] = []
        if let tableName {
            names.append("table " + (schemaName.map { "\($0)." } ?? "") + tableName)
        } else if let schemaName {
            names.append("schema \(schemaName)")
        }
        if let columnName { names.append("column \(columnName)") }
        if let dataTypeName { names.append("type \(dataTypeName)") }
        if let constraintName { names.append("constraint \(constraintName)") }
        if !names.isEmpty { text += " (" + names.joined(separator: ", ") + ")" }
        switch code {
        case .connectionFailed, .connectionLost:
            if let host { text += " [server \(host)" + (port.map { ":\($0)" } ?? "") + "]" }
        case .connectionClosed, .server, .timeout, .cancelled, .clientMisuse, .decoding, .transactionRolledBack:
            break
        }
        return text
    }

    public var debugDescription: String {
        var fields: [String] = ["code: \(code)"]
        func add(_ name: String, _ value: String?) {
            if let value { fields.append("\(name): \(value)") }
        }
        add("sqlState", sqlState?.rawValue)
        add("severity", severity)
        add("message", message)
        add("detail", detail)
        add("hint", hint)
        add("context", context)
        add("position", position.map(String.init))
        add("schema", schemaName)
        add("table", tableName)
        add("column", columnName)
        add("dataType", dataTypeName)
        add("constraint", constraintName)
        add("host", host)
        add("port", port)
        add("query", query)
        return "PostgresError(" + fields.joined(separator: ", ") + ")"
    }

    /// `invalid input syntax for type integer: "abc"` → `invalid input syntax for type integer: "…"`.
    static func elidingQuotedParts(_ message: String) -> String {
        var out = ""
        var inQuote = false
        for character in message {
            if character == "\"" {
                out.append(inQuote ? "…\"" : "\"")
                inQuote.toggle()
            } else if !inQuote {
                out.append(character)
            }
        }
        return inQuote ? out + "…\"" : out
    }
}
