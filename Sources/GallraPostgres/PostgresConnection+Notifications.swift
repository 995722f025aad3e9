// LISTEN/NOTIFY on a `PostgresConnection`. Why the waiting happens on the connection's own thread, and how
// notifications that arrive during a statement are kept, is explained at the top of PostgresConnection.swift.
//
// Channel names are always sent quoted (`LISTEN "gallra_trigger"`) and bound as they are to `pg_notify`, so a
// channel is matched exactly, case included: `listen("Trigger")` hears `notify("Trigger")` but not a hand-typed
// `NOTIFY Trigger`, which the server folds to `trigger`.
import CLibPQ
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif
import GallraCore
import Logging

/// A notification from PostgreSQL: `NOTIFY channel, 'payload'` or `pg_notify(channel, payload)` by some session.
public struct PostgresNotification: Sendable, Hashable {
    /// The channel it was sent on, exactly as the sender named it.
    public var channel: String
    /// The payload; empty when none was given.
    public var payload: String
    /// The server process of the sending session (its `pg_backend_pid()`).
    public var backendPID: Int32

    public init(channel: String, payload: String, backendPID: Int32) {
        self.channel = channel
        self.payload = payload
        self.backendPID = backendPID
    }
}

extension PostgresConnection {
    /// Subscribes this session to `channel` (`LISTEN`). Inside a transaction it takes effect at `COMMIT`.
    /// The name is quoted, so any text of 1 to 63 bytes without NUL works and case matters.
    public func listen(_ channel: String) async throws {
        try Self.checkChannelName(channel)
        try await execute("LISTEN " + SQLIdentifier.quoted(channel))
    }

    /// Ends the subscription to `channel` (`UNLISTEN`). Notifications already received stay buffered.
    public func unlisten(_ channel: String) async throws {
        try Self.checkChannelName(channel)
        try await execute("UNLISTEN " + SQLIdentifier.quoted(channel))
    }

    /// Sends a notification (`SELECT pg_notify($1, $2)`): delivered to the listeners when the current
    /// transaction commits (at once outside a transaction). The server limits `payload` to 7999 bytes.
    public func notify(_ channel: String, payload: String = "") async throws {
        try Self.checkChannelName(channel)
        try await execute("SELECT pg_notify($1, $2)", [.text(channel), .text(payload)])
    }

    /// The next notification for this session: a buffered one at once, otherwise the next to arrive, or nil
    /// once `timeout` has passed (nil waits without limit).
    ///
    /// The wait happens on the connection's thread, in slices of at most 250 ms; between slices other tasks'
    /// statements on this connection run. Task cancellation ends the wait within a slice with a `.cancelled`
    /// error and leaves the connection usable. A lost connection throws `isConnectionLost` (after the
    /// notifications received before the loss have been handed out). A session receives nothing while it is
    /// inside a transaction: the server delivers at the end of the transaction.
    public func waitForNotification(timeout: Duration?) async throws -> PostgresNotification? {
        let deadline = timeout.map { ContinuousClock.now + max($0, .zero) }
        while true {
            if Task.isCancelled {
                throw PostgresError(.cancelled, "waiting for a notification was cancelled")
            }
            try receiveNotifications(waitingUntil: deadline)
            if !notificationBuffer.isEmpty { return notificationBuffer.removeFirst() }
            if let deadline, ContinuousClock.now >= deadline { return nil }
            // Back of the executor's queue: statements other tasks started meanwhile run before the next slice.
            await Task.yield()
        }
    }

    /// The notifications received so far and not handed out yet, oldest first, without waiting: those buffered
    /// during statements and those already readable on the socket. Throws when the connection is closed or lost
    /// and nothing is left to hand out.
    public func pendingNotifications() throws -> [PostgresNotification] {
        try receiveNotifications(waitingUntil: nil, wait: false)
        defer { notificationBuffer.removeAll() }
        return notificationBuffer
    }

    /// The notifications of this connection as an asynchronous sequence, each element one
    /// ``waitForNotification(timeout:)``; it ends when the iterating task is cancelled and throws when the
    /// connection is lost. Call ``listen(_:)`` first.
    public nonisolated func notifications() -> PostgresNotificationSequence {
        PostgresNotificationSequence(connection: self)
    }

    /// Channels are identifiers on the server (type `name`): 1 to 63 bytes, no NUL. A longer name would be
    /// truncated silently, so that `listen` and `notify` could disagree on the channel.
    static func checkChannelName(_ channel: String) throws {
        guard !channel.isEmpty, !channel.utf8.contains(0) else {
            throw PostgresError(.clientMisuse, "channel name must be non-empty and contain no NUL character")
        }
        guard channel.utf8.count <= 63 else {
            throw PostgresError(.clientMisuse, "channel name longer than 63 bytes: PostgreSQL would truncate it")
        }
    }

    // MARK: - Receiving

    /// Moves libpq's queue into the buffer (`PQnotifies`).
    func collectNotifications() {
        notificationBuffer += handle.takeNotifications()
    }

    /// Reads what the server has sent and buffers its notifications; when `wait` is set and nothing is buffered,
    /// first waits for the socket for at most one poll slice (never past `deadline`). A loss noticed while
    /// notifications are buffered is held back until they have been handed out.
    private func receiveNotifications(waitingUntil deadline: ContinuousClock.Instant?, wait: Bool = true) throws {
        collectNotifications()
        if notificationBuffer.isEmpty, let loss = notificationLoss {
            notificationLoss = nil
            throw loss
        }
        guard let conn = handle.conn else {
            if notificationBuffer.isEmpty { try ensureOpen() }  // closed by close()
            return
        }
        do {
            try consumeInput(conn)
            collectNotifications()
            if wait, notificationBuffer.isEmpty, try Self.waitForSocket(conn, events: Int16(POLLIN), until: deadline) {
                try consumeInput(conn)
                collectNotifications()
            }
        } catch var error as PostgresError where error.code == .connectionLost {
            error.host = error.host ?? PQhost(conn).map { String(cString: $0) }
            error.port = error.port ?? PQport(conn).map { String(cString: $0) }
            handle.finish()
            collectNotifications()
            logger.debug("connection to PostgreSQL lost", metadata: ["postgres.error": "\(error)"])
            guard notificationBuffer.isEmpty else {
                notificationLoss = error
                return
            }
            throw error
        }
    }

    /// `PQconsumeInput`, which never blocks in non-blocking mode; throws `.connectionLost` when the server is gone.
    private func consumeInput(_ conn: OpaquePointer) throws {
        guard PQconsumeInput(conn) == 1, PQstatus(conn) == CONNECTION_OK else {
            throw PostgresError(.connectionLost, Self.errorMessage(conn) ?? "the connection was lost")
        }
    }
}

/// A connection's notifications as an `AsyncSequence` (``PostgresConnection/notifications()``). Pull-based: each
/// element is waited for on the connection's thread when the iterator asks for it, so nothing runs in between.
public struct PostgresNotificationSequence: AsyncSequence, Sendable {
    public typealias Element = PostgresNotification

    let connection: PostgresConnection

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(connection: connection)
    }

    /// Waits for one notification per `next()`.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let connection: PostgresConnection

        public mutating func next() async throws -> PostgresNotification? {
            do {
                return try await connection.waitForNotification(timeout: nil)
            } catch let error as PostgresError where error.code == .cancelled {
                return nil
            }
        }
    }
}
