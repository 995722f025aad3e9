#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore
import GallraPostgres

/// One standby streaming from the primary, as the primary sees it in `pg_stat_replication`.
public struct StandbyLag: Sendable, Hashable {
    /// The standby's `application_name` (its `cluster_name`, or the one its `primary_conninfo` names).
    public var name: String
    /// `replay_lag`: how long ago the WAL the standby last replayed was written. Nil when the primary has no
    /// recent measurement (the standby caught up and the primary is idle) or cannot show it. It does not grow
    /// while replay is paused or stuck: lag times are only measured when replay passes a sampled position.
    public var replayLag: Duration?
    /// WAL written on the primary that the standby has not replayed yet, in bytes; nil when unknown.
    public var replayBytes: Int64?
    /// Whether gallra's role sees the standby's lag: without `pg_monitor` (or `pg_read_all_stats`) every column
    /// but the process id reads NULL.
    public var visible: Bool

    public init(name: String, replayLag: Duration?, replayBytes: Int64?, visible: Bool = true) {
        self.name = name
        self.replayLag = replayLag
        self.replayBytes = replayBytes
        self.visible = visible
    }
}

/// What a ``ReplicaLagSource`` saw at one moment.
public struct ReplicaLagReading: Sendable, Hashable {
    /// The server is itself a standby (`pg_is_in_recovery()`): the lag of standbys cascading from it is not
    /// made by gallra's batches, which run on the primary.
    public var inRecovery: Bool
    /// The standbys connected now; empty when there are none.
    public var standbys: [StandbyLag]
    /// The role gallra is connected as, quoted where SQL needs it: named in the grant that makes hidden lag visible.
    public var role: String

    public init(inRecovery: Bool = false, standbys: [StandbyLag], role: String = "gallra") {
        self.inRecovery = inRecovery
        self.standbys = standbys
        self.role = role
    }
}

/// Where the replica-lag throttle reads the lag: the primary's `pg_stat_replication`, or a fake in tests.
public protocol ReplicaLagSource: Sendable {
    /// The standbys' lag now.
    func read() async throws -> ReplicaLagReading
}

/// The lag of the standbys streaming from the server `connection` is connected to, from `pg_stat_replication`.
public struct PostgresReplicaLagSource: ReplicaLagSource {
    let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    public func read() async throws -> ReplicaLagReading {
        let server = try await connection.query(
            "SELECT pg_is_in_recovery() AS in_recovery, quote_ident(current_user) AS role")
        let inRecovery = try server.first?.decode("in_recovery", as: Bool.self) ?? false
        let role = try server.first?.decode("role", as: String.self) ?? ""
        // pg_current_wal_lsn() fails during recovery, and there is nothing to hold back for on a standby.
        guard !inRecovery else { return ReplicaLagReading(inRecovery: true, standbys: [], role: role) }
        // `state` is NULL only where the role lacks the privileges of pg_read_all_stats (pg_monitor has them).
        let standbys = try await connection.query(
            """
            SELECT coalesce(application_name, '') AS name, state IS NOT NULL AS visible,
                   extract(epoch FROM replay_lag)::float8 AS replay_lag,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::int8 AS replay_bytes
            FROM pg_stat_replication
            ORDER BY application_name, pid
            """
        ).map { row in
            StandbyLag(
                name: try row.decode("name", as: String.self),
                replayLag: try row.decode("replay_lag", as: Double?.self).map { .milliseconds(Int64($0 * 1000)) },
                replayBytes: try row.decode("replay_bytes", as: Int64?.self),
                visible: try row.decode("visible", as: Bool.self))
        }
        return ReplicaLagReading(inRecovery: false, standbys: standbys, role: role)
    }
}

/// The bounds of `throttle.replica_lag` and `throttle.replica_lag_bytes`: batches pause while a standby's replay
/// is further behind than either.
public struct ReplicaLagLimits: Sendable, Hashable {
    /// The longest `replay_lag` batches go on with; nil: no bound on time.
    public var replayLag: Duration?
    /// The most WAL bytes a standby may have left to replay; nil: no bound on bytes.
    public var replayBytes: Int64?

    /// Bounds; zero (or nil) leaves a bound out.
    public init(replayLag: Duration? = nil, replayBytes: Int64? = nil) {
        self.replayLag = replayLag.flatMap { $0 > .zero ? $0 : nil }
        self.replayBytes = replayBytes.flatMap { $0 > 0 ? $0 : nil }
    }

    /// Whether any bound is set.
    public var isEnabled: Bool { replayLag != nil || replayBytes != nil }

    /// The standby furthest beyond a bound (time before bytes), nil when every standby is within the bounds or
    /// its lag is unknown, or the server is itself a standby.
    public func excess(in reading: ReplicaLagReading) -> ReplicaLagExcess? {
        guard !reading.inRecovery else { return nil }
        let visible = reading.standbys.filter(\.visible)
        if let bound = replayLag,
            let worst = visible.filter({ ($0.replayLag ?? .zero) > bound }).max(by: {
                ($0.replayLag ?? .zero) < ($1.replayLag ?? .zero)
            }), let lag = worst.replayLag
        {
            return ReplicaLagExcess(standby: worst.name, measure: .time(lag, bound: bound))
        }
        if let bound = replayBytes,
            let worst = visible.filter({ ($0.replayBytes ?? 0) > bound }).max(by: {
                ($0.replayBytes ?? 0) < ($1.replayBytes ?? 0)
            }), let bytes = worst.replayBytes
        {
            return ReplicaLagExcess(standby: worst.name, measure: .bytes(bytes, bound: bound))
        }
        return nil
    }
}

/// A standby beyond a bound: which one, by how much, and which bound.
public struct ReplicaLagExcess: Sendable, Hashable, CustomStringConvertible {
    public enum Measure: Sendable, Hashable {
        case time(Duration, bound: Duration)
        case bytes(Int64, bound: Int64)
    }

    /// The standby's `application_name`.
    public var standby: String
    public var measure: Measure

    /// "replica r1 replay lag 42 s exceeds throttle.replica_lag 10 s".
    public var description: String {
        switch measure {
        case .time(let lag, let bound):
            "replica \(standby) replay lag \(Self.seconds(lag)) exceeds throttle.replica_lag \(Self.seconds(bound))"
        case .bytes(let bytes, let bound):
            "replica \(standby) replay \(ByteSize.format(bytes)) behind exceeds throttle.replica_lag_bytes "
                + ByteSize.format(bound)
        }
    }

    /// "42 s", "0.5 s".
    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let tenths = attoseconds / 100_000_000_000_000_000
        return tenths == 0 || seconds >= 60 ? "\(seconds) s" : "\(seconds).\(tenths) s"
    }
}

/// Sizes in bytes as PostgreSQL writes them: `256MB`, `64kB`, `1GB` (units of 1024), or a bare number of bytes.
public enum ByteSize {
    /// Why a size does not parse.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    static let units: [(name: String, factor: Int64)] = [
        ("B", 1), ("kB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30), ("TB", 1 << 40),
    ]

    /// Parses "256MB", "256 MB", "64kB", "1GB", "1048576"; units are case-insensitive.
    public static func parse(_ text: String) throws(ParseError) -> Int64 {
        let trimmed = text.trimmingWhitespace()
        let digits = trimmed.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty else {
            throw ParseError(description: "\"\(text)\" is not a size; write for example 256MB")
        }
        let unit = trimmed.dropFirst(digits.count).trimmingWhitespace()
        var factor: Int64 = 1
        if !unit.isEmpty {
            guard
                let match = units.first(where: { $0.name.lowercased() == unit.lowercased() })
                    ?? (unit.lowercased() == "bytes" ? ("B", 1) : nil)
            else {
                throw ParseError(description: "unknown unit \"\(unit)\" in \"\(text)\"; use B, kB, MB, GB or TB")
            }
            factor = match.factor
        }
        guard let value = Int64(digits) else { throw ParseError(description: "\"\(text)\" is too large") }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: factor)
        guard !overflow else { throw ParseError(description: "\"\(text)\" is too large") }
        return bytes
    }

    /// "300 MB", "64 kB", "512 bytes": the largest unit that leaves at least 10 of it, like `pg_size_pretty`.
    public static func format(_ bytes: Int64) -> String {
        var value = bytes
        var unit = 0
        while unit < units.count - 1, value >= 10 * 1024 || (value >= 1024 && value % 1024 == 0) {
            value = (value + 512) / 1024
            unit += 1
        }
        return unit == 0 ? "\(value) bytes" : "\(value) \(units[unit].name)"
    }
}
