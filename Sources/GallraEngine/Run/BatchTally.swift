/// A batch's turn: its number in the policy's run, the key it picks after, and how many subjects it may take.
struct BatchClaim: Sendable {
    var number: Int
    var after: String?
    var limit: Int
}

/// The batches of one policy's live run, on one connection or several (`limits.parallel`).
///
/// Batches pick in turn: a batch's turn starts when it claims, and ends when its first attempt has picked (and
/// locked) its keys, so that the next batch picks after them while this one still runs. Each pick's `SKIP LOCKED`
/// and the confirmation on a fresh snapshot keep two batches from ever acting on one subject; the audit head's
/// row lock makes their blocks follow one another. The tally also adds up what the batches did.
actor BatchTally {
    private(set) var report: PolicyRunReport
    /// The first error that ended a connection's batches (it fails, or interrupts, the policy).
    private(set) var failure: (any Error)?
    nonisolated let total: Int
    private let cap: Int
    private let batchSize: Int
    private let started = ContinuousClock.now

    private var number = 0
    private var after: String?
    /// A pick took fewer keys than it asked for: no due subject is left after it.
    private(set) var exhausted = false
    /// The claim whose turn it is, until its keys are picked.
    private var turn: Int?
    private var waiting: [CheckedContinuation<Void, Never>] = []
    /// Keys picked by batches that have not finished, by batch number.
    private var inFlight: [Int: Int] = [:]
    /// A shared row two subjects in different batches use is retained in each batch: counted once per run, as
    /// the dry run counts it (only shared rows are held here, never more than the run reaches).
    private var retained: [Set<String>]
    private var rows = 0

    init(report: PolicyRunReport, cap: Int, batchSize: Int, total: Int) {
        self.report = report
        self.cap = cap
        self.batchSize = batchSize
        self.total = total
        self.retained = report.steps.map { _ in [] }
    }

    var processed: Int { report.processed }

    /// Waits for the turn to pick, and takes it; nil when there is nothing more to take: no due subject is left,
    /// the run's cap is reached (counting the batches still running), or the policy has failed.
    ///
    /// With several connections, a batch that finds some of its picked subjects no longer due leaves the cap's
    /// remainder to a later run rather than holding the others back; one connection alone takes it.
    func claim() async -> BatchClaim? {
        while turn != nil { await withCheckedContinuation { waiting.append($0) } }
        guard failure == nil, !exhausted else { return nil }
        let limit = min(batchSize, cap - report.processed - inFlight.values.reduce(0, +))
        guard limit > 0 else { return nil }
        number += 1
        turn = number
        return BatchClaim(number: number, after: after, limit: limit)
    }

    /// The claim's first attempt picked `keys`: the next batch picks after them.
    func picked(_ claim: BatchClaim, _ keys: [String]) {
        inFlight[claim.number] = keys.count
        if let last = keys.last { after = last }
        if keys.count < claim.limit { exhausted = true }
        passTurn(claim.number)
    }

    /// The claim's batch committed, after `duration` (its attempts included).
    func finished(_ claim: BatchClaim, _ outcome: BatchOutcome, duration: Duration) -> RunProgress {
        inFlight[claim.number] = nil
        report.batches += outcome.subjects > 0 ? 1 : 0
        report.processed += outcome.subjects
        if !outcome.left.isEmpty { report.leftSubjects = (report.leftSubjects ?? []) + outcome.left }
        if outcome.consentEvents > 0 { report.consentEvents = (report.consentEvents ?? 0) + outcome.consentEvents }
        for (index, counts) in outcome.steps.enumerated() {
            report.steps[index].rows += counts.rows
            if counts.anonymized > 0 {
                report.steps[index].anonymized = (report.steps[index].anonymized ?? 0) + counts.anonymized
            }
            retained[index].formUnion(counts.retained)
            report.steps[index].retained = retained[index].count
            rows += counts.rows
        }
        if outcome.subjects > 0 {
            RunMetrics.batch(
                policy: report.name, subjects: outcome.subjects, audited: outcome.audited, duration: duration)
        }
        RunMetrics.left(policy: report.name, outcome.left)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        // The first batches include the planner's warm-up and an uneven start: no estimate before a few are done.
        let remaining =
            report.processed > 0 && report.batches >= RunProgress.batchesBeforeEstimate
            ? elapsed * (Double(max(0, total - report.processed)) / Double(report.processed)) : nil
        return RunProgress(
            policy: report.name, subjectsDone: report.processed, subjectsTotal: total,
            rowsPerSecond: seconds > 0 ? Double(rows) / seconds : 0, estimatedRemaining: remaining)
    }

    /// The claim's batch was skipped after its last attempt.
    func skipped(_ claim: BatchClaim, _ failure: BatchFailure) {
        inFlight[claim.number] = nil
        report.skippedBatches.append(failure)
        report.skippedBatches.sort { $0.batch < $1.batch }
    }

    /// Time spent waiting for lagging standbys.
    func addThrottled(_ seconds: Double) {
        report.throttledSeconds += seconds
    }

    /// A connection's batches ended with `error`; no batch starts after it. `claim` is the connection's last
    /// claim: its turn passes on if it had not picked yet.
    func fail(_ error: any Error, claim: BatchClaim?) {
        if failure == nil { failure = error }
        if let claim {
            inFlight[claim.number] = nil
            passTurn(claim.number)
        }
    }

    private func passTurn(_ number: Int) {
        guard turn == number else { return }
        turn = nil
        let resumed = waiting
        waiting = []
        for continuation in resumed { continuation.resume() }
    }
}
