#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraEngine
import GallraPolicy
import GallraPostgres
import Logging

/// What the daemon runs with; read at start and again on SIGHUP (by the closure the executable provides).
public struct DaemonConfiguration: Sendable {
    /// A libpq connection string or URI; nil uses libpq's defaults.
    public var database: String?
    /// The database password from the systemd credential `db-password`, if any (the conninfo's own wins).
    public var password: String?
    /// The `idle_in_transaction_session_timeout` of every session (`session.idle_in_transaction_timeout`); nil
    /// leaves the server's.
    public var idleInTransactionTimeout: Duration?
    /// The audit trail's key (live runs need it).
    public var auditKey: AuditKey
    /// The schedule of policies that name none (`schedule.default`).
    public var defaultSchedule: Schedule
    /// Reconnecting while the database is down.
    public var reconnect: Backoff
    /// How often a standby tries the runner lock.
    public var standbyRetry: Duration
    /// A main loop silent for longer than this is wedged: the watchdog stops pinging and systemd restarts it.
    public var stallTimeout: Duration
    /// `statement_timeout` and `lock_timeout` of batches.
    public var statementTimeout: Duration
    public var lockTimeout: Duration
    /// The gallra version, recorded with each run.
    public var gallraVersion: String?
    /// The lowest level logged (`log.level`); a reload applies a new one.
    public var logLevel: Logger.Level
    /// Live batches pause while a standby lags beyond these (`throttle.replica_lag`, `throttle.replica_lag_bytes`);
    /// a reload applies new bounds from the next run.
    public var replicaLag: ReplicaLagLimits
    /// The longest the service goes without looking for due erasure requests (`requests.sweep`): a request whose
    /// notification was lost waits at most this long, and a request the shop's locks held back is retried at least
    /// this often.
    public var requestSweep: Duration
    /// The first wait before a request the shop's locks held back is tried again (doubled per attempt, up to
    /// ``requestSweep``).
    public var requestRetry: Duration
    /// Where the erasure ledger is (`ledger.path`, or under `$STATE_DIRECTORY`); none when neither is set.
    public var ledger = LedgerLocation(configured: nil, stateDirectory: nil)
    /// How often a service holding live work back for an unresolved restore looks at the ledger again (SIGHUP
    /// looks at once).
    public var ledgerRecheck: Duration = .seconds(60)

    public init(
        database: String?, password: String? = nil,
        idleInTransactionTimeout: Duration? = PostgresConnection.defaultIdleInTransactionTimeout, auditKey: AuditKey,
        defaultSchedule: Schedule,
        reconnect: Backoff = Backoff(initial: .seconds(1), maximum: .seconds(60)), standbyRetry: Duration = .seconds(5),
        stallTimeout: Duration = .seconds(300), statementTimeout: Duration = .seconds(60),
        lockTimeout: Duration = .seconds(2), gallraVersion: String? = nil, logLevel: Logger.Level = .info,
        replicaLag: ReplicaLagLimits = ReplicaLagLimits(), requestSweep: Duration = .seconds(30),
        requestRetry: Duration = .seconds(2)
    ) {
        self.database = database
        self.password = password
        self.idleInTransactionTimeout = idleInTransactionTimeout
        self.auditKey = auditKey
        self.defaultSchedule = defaultSchedule
        self.reconnect = reconnect
        self.standbyRetry = standbyRetry
        self.stallTimeout = stallTimeout
        self.statementTimeout = statementTimeout
        self.lockTimeout = lockTimeout
        self.gallraVersion = gallraVersion
        self.logLevel = logLevel
        self.replicaLag = replicaLag
        self.requestSweep = requestSweep
        self.requestRetry = requestRetry
    }

    /// Whether `other` connects differently (a reload then reconnects).
    func connectsDifferently(from other: DaemonConfiguration) -> Bool {
        database != other.database || password != other.password
            || idleInTransactionTimeout != other.idleInTransactionTimeout
    }
}

/// What `gallra trigger` asks the daemon (the JSON payload of a `gallra_trigger` notification).
public struct TriggerRequest: Sendable, Hashable, Codable {
    /// The policies to run now; empty: every active policy (and drafts as dry runs).
    public var policies: [String]

    public init(policies: [String] = []) {
        self.policies = policies
    }

    /// The notification payload.
    public var payload: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Reads a payload; an empty or unreadable one means "run everything" (a hand-typed `NOTIFY gallra_trigger`).
    public init(payload: String) {
        let decoded = try? JSONDecoder().decode(TriggerRequest.self, from: Data(payload.utf8))
        self = decoded ?? TriggerRequest()
    }
}
