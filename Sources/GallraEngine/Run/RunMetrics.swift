import Metrics

/// What live runs count, through swift-metrics: whichever backend the process bootstrapped (`GallraMetrics`'s
/// Prometheus registry for the service and `run --once` with `metrics.*` set), or nothing at all.
///
/// Labels name policies, tables, actions and outcomes only: never a subject key or digest. `docs/metrics.md` lists
/// every metric.
public enum RunMetrics {
    /// Subjects processed (audited), per policy.
    public static let subjectsProcessed = "gallra_subjects_processed_total"
    /// Rows per policy, table and action (`deleted`, `anonymized`, `retained`), as the audit records count them: a
    /// row several subjects share is retained for each (the run's report counts it once), and the consent events
    /// removed count as `gallra.consent_event` deleted.
    public static let rows = "gallra_rows_total"
    /// Live runs by outcome (`done`, `partial`, `refused`, `failed`, `interrupted`).
    public static let runs = "gallra_runs_total"
    /// A committed batch's time, per policy.
    public static let batchDuration = "gallra_batch_duration_seconds"
    /// When each policy last ran to its end (no failure, no refusal), in seconds since the epoch.
    public static let lastSuccess = "gallra_last_success_timestamp_seconds"
    /// Subjects still due after each policy's latest live run.
    public static let subjectsDue = "gallra_subjects_due"
    /// Subjects a batch left to a later run, per policy, reason (`row_locked`, `refused`) and the server's SQLSTATE
    /// for a refusal (a consent guard's `GC009` among them).
    public static let subjectsLeft = "gallra_subjects_left_total"
    /// Policies the blast-radius guard refused.
    public static let guardRefusals = "gallra_guard_refusals_total"
    /// Pauses of a policy's batches for a lagging standby, and the seconds they lasted.
    public static let replicaLagPauses = "gallra_replica_lag_pauses_total"
    public static let replicaLagPauseSeconds = "gallra_replica_lag_pause_seconds_total"
    /// Erasure requests pending, and the age of the oldest (0 when none is).
    public static let erasureRequestsPending = "gallra_erasure_requests_pending"
    public static let erasureRequestOldestAge = "gallra_erasure_request_oldest_pending_age_seconds"

    /// The bounds of the batch duration histogram, in seconds: a batch takes milliseconds to a minute
    /// (`statement_timeout`), more with retries.
    public static let batchDurationBuckets: [Duration] = [
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        .seconds(120),
    ]

    /// Creates the series that must exist before anything happens: every run outcome at 0 (so that an alert on an
    /// increase sees the first failed run) and the request gauges.
    public static func prepare() {
        for outcome in [RunReport.Outcome.done, .partial, .refused, .failed, .interrupted] {
            Counter(label: runs, dimensions: [("outcome", outcome.rawValue)]).increment(by: 0)
        }
    }

    /// A batch of `policy` committed: its subjects, its audit records' rows per table and action, its time.
    static func batch(policy: String, subjects: Int, audited: [AuditCountKey: Int], duration: Duration) {
        Counter(label: subjectsProcessed, dimensions: [("policy", policy)]).increment(by: subjects)
        for (kind, count) in audited where count > 0 {
            Counter(
                label: rows, dimensions: [("policy", policy), ("table", kind.table), ("action", kind.action.rawValue)]
            ).increment(by: count)
        }
        Timer(label: batchDuration, dimensions: [("policy", policy)]).recordNanoseconds(
            duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    /// A batch of `policy` left `subjects` to a later run.
    static func left(policy: String, _ subjects: [LeftSubject]) {
        for subject in subjects {
            let reason = subject.reason == .rowLocked ? "row_locked" : "refused"
            Counter(
                label: subjectsLeft,
                dimensions: [("policy", policy), ("reason", reason), ("sqlstate", subject.sqlState ?? "")]
            ).increment()
        }
    }

    /// A policy's batches ended with `due` subjects still due (its cap reached, some left or locked).
    static func due(policy: String, subjects: Int) {
        Gauge(label: subjectsDue, dimensions: [("policy", policy)]).record(max(0, subjects))
    }

    /// The guard refused `policy`.
    static func refused(policy: String) {
        Counter(label: guardRefusals, dimensions: [("policy", policy)]).increment()
    }

    /// `policy`'s batches were paused for a lagging standby, `seconds` long.
    static func replicaLagPause(policy: String, seconds: Double) {
        Counter(label: replicaLagPauses, dimensions: [("policy", policy)]).increment()
        FloatingPointCounter(label: replicaLagPauseSeconds, dimensions: [("policy", policy)]).increment(by: seconds)
    }

    /// A live run ended: its outcome, and the time of each policy that ran to its end.
    static func run(_ outcome: RunReport.Outcome, policies: [PolicyRunReport], finishedAt seconds: Double) {
        Counter(label: runs, dimensions: [("outcome", outcome.rawValue)]).increment()
        for policy in policies
        where policy.skipped == nil && policy.failure == nil && policy.refused == nil && outcome != .interrupted {
            Gauge(label: lastSuccess, dimensions: [("policy", policy.name)]).record(seconds)
        }
    }

    /// The erasure request queue as it stands.
    static func requests(pending: Int, oldestAge seconds: Double) {
        Gauge(label: erasureRequestsPending).record(pending)
        Gauge(label: erasureRequestOldestAge).record(seconds)
    }
}
