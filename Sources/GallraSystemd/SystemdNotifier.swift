import CSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// Sends service state to the service manager (`sd_notify`) and reads the watchdog settings.
///
/// Without `NOTIFY_SOCKET` (not started by systemd, or `Type=` is not `notify`) every message is
/// a no-op that succeeds, so callers need no branch for "running outside systemd".
public struct SystemdNotifier: Sendable {
    /// A failed `sd_notify` call: the socket was set but the message could not be delivered.
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        /// The errno value libsystemd reported (positive, e.g. `ECONNREFUSED`).
        public var code: Int32
        /// The first assignment of the message that failed, e.g. `READY=1`, for the log line.
        public var message: String

        public init(code: Int32, message: String) {
            self.code = code
            self.message = message
        }

        public var description: String {
            let reason = String(cString: strerror(code))
            return
                "sd_notify \(message) failed: \(reason) (errno \(code)); check NOTIFY_SOCKET and the unit's NotifyAccess="
        }
    }

    public init() {}

    /// True when the service manager listens for notifications (`NOTIFY_SOCKET` is set).
    public var isEnabled: Bool {
        guard let value = getenv("NOTIFY_SOCKET") else { return false }
        return value.pointee != 0
    }

    /// `READY=1`: start-up finished (after connecting and migrating), optionally with a status line.
    public func ready(status: String? = nil) throws(Error) {
        try send(["READY=1"] + Self.statusAssignment(status))
    }

    /// `STATUS=...`: one line saying what the daemon is doing, shown by `systemctl status`.
    public func status(_ text: String) throws(Error) {
        try send(Self.statusAssignment(text))
    }

    /// `WATCHDOG=1`: the keep-alive ping, to be sent every ``watchdogPingInterval``.
    public func watchdog() throws(Error) {
        try send(["WATCHDOG=1"])
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC), as the `Type=notify-reload` protocol
    /// expects; send ``ready(status:)`` when the reload is complete.
    public func reloading(status: String? = nil) throws(Error) {
        try send(["RELOADING=1", "MONOTONIC_USEC=\(Self.monotonicMicroseconds())"] + Self.statusAssignment(status))
    }

    /// `STOPPING=1`: shutdown has begun (after SIGTERM), optionally with a status line.
    public func stopping(status: String? = nil) throws(Error) {
        try send(["STOPPING=1"] + Self.statusAssignment(status))
    }

    /// `EXTEND_TIMEOUT_USEC=`: asks for `duration` more time for the current start-up, reload or stop.
    public func extendTimeout(_ duration: Duration) throws(Error) {
        try send(["EXTEND_TIMEOUT_USEC=\(Self.microseconds(duration))"])
    }

    /// Sends raw `NAME=value` assignments in one datagram. Newlines and NUL characters inside an
    /// assignment are replaced by spaces so that a value (a policy name, say) cannot inject another one.
    public func send(_ assignments: [String]) throws(Error) {
        guard !assignments.isEmpty else { return }
        let state = assignments.map(Self.singleLine).joined(separator: "\n")
        let result = sd_notify(0, state)
        if result < 0 {
            throw Error(code: -result, message: Self.singleLine(assignments[0]))
        }
    }

    /// The watchdog timeout (`WATCHDOG_USEC`) when the service manager expects pings from this
    /// process; nil when the watchdog is off or `WATCHDOG_PID` names another process.
    public var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    /// How often to send ``watchdog()``: half of ``watchdogInterval``, as sd_watchdog_enabled(3) advises.
    public var watchdogPingInterval: Duration? {
        watchdogInterval.map { $0 / 2 }
    }

    static func statusAssignment(_ status: String?) -> [String] {
        status.map { ["STATUS=\($0)"] } ?? []
    }

    static func singleLine(_ assignment: String) -> String {
        guard assignment.contains(where: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" || $0 == "\0" }) else {
            return assignment
        }
        return String(assignment.map { $0 == "\n" || $0 == "\r\n" || $0 == "\r" || $0 == "\0" ? " " : $0 })
    }

    /// Whole microseconds, rounded up so that a short extension is never sent as zero.
    static func microseconds(_ duration: Duration) -> UInt64 {
        guard duration > .zero else { return 0 }
        let (seconds, attoseconds) = duration.components
        let perMicrosecond: Int64 = 1_000_000_000_000
        let fraction = attoseconds / perMicrosecond + (attoseconds % perMicrosecond > 0 ? 1 : 0)
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000)
        let (total, carry) = whole.addingReportingOverflow(UInt64(fraction))
        return overflow || carry ? .max : total
    }

    /// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC=` with.
    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}
