import Logging

/// The kinds of event gallra logs for operators, each with a fixed `MESSAGE_ID` that `systemd/gallra.catalog`
/// explains (`journalctl -x`), so that `journalctl MESSAGE_ID=...` finds every event of a kind.
///
/// The ids are fixed forever: monitoring and the catalog refer to them. Add new kinds; never change an id.
public enum JournalEvent: String, Sendable, CaseIterable {
    case runStarted = "1cc91e9da714472ea1cda2bfbe3802fe"
    case runFinished = "8f7f4f3e7f9c45beafc589f64fabb20c"
    case policyProcessed = "64ea9f621ca1482592cdbf281586ff73"
    case policyRefused = "132358728f1b493db84afd9b384ed213"
    case policyInvalid = "da035686501e4c04ba4cd57c8ef2a08e"
    case batchSkipped = "a9517f601c144af380185a40a58ed75b"
    case subjectLeft = "c350e31a3b1648789140a4210cb672b5"
    case databaseUnreachable = "25503ea507f74aafae31c273356c0a40"
    case databaseBack = "7b5092f2da284a32ab42b3afe4f282fe"
    case auditHead = "6598745a0bca4a0a9c200b07973d9027"
    case reload = "4cf11a4242ea4856aa548ef60b7286ac"
    case standby = "04e54d038a2d487e864c327db9ba9682"
    case leader = "156912201ce047d1b61337a4bca82875"
    case stopping = "3f8a43270bab468293993465e88d4138"
    case batchesPaused = "ef6ead1bd0af4b7893fa3aaa7dcb4e65"
    case batchesResumed = "9baf9c6ec7c1432cbe988cb41d0cca24"
    case replicaLagHidden = "5d8b702c734447fa98a525a9de989932"
    case erasureRequest = "b0a4c6e1f25d4f0e9a7c3d18e62b5f47"
    /// The erasure ledger could not be written (`crit`): the run's work is committed, the ledger lags behind it.
    case ledgerFailed = "d74f15d921fe4884b8649c67ab16f279"
    /// The database is older than its ledger (a restore) or has diverged from it: live work waits.
    case restoreDetected = "4959da0371b2465ab926f04fce132391"
    /// A restore was resolved (`gallra ledger replay` or `accept`): live work goes on.
    case restoreResolved = "0568fe524c0843888fc7930f09242fb9"

    /// The `MESSAGE_ID` field (a journal field name already, so the journal handler passes it through).
    public var id: String { rawValue }

    /// `metadata` with this event's `MESSAGE_ID` added.
    public func metadata(_ metadata: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = metadata
        metadata["MESSAGE_ID"] = "\(rawValue)"
        return metadata
    }
}

/// The LISTEN/NOTIFY channels between gallra commands and the daemon.
public enum NotificationChannel {
    /// `gallra trigger`: run now. The payload is a ``TriggerRequest`` as JSON.
    public static let trigger = "gallra_trigger"
    /// A policy was stored (`gallra policy apply`, `disable`): reload the policies. The payload names it.
    public static let policy = "gallra_policy"
    /// An erasure request was recorded (`gallra.request_erasure`, `gallra erase`): process the due requests. The
    /// payload is the request's id.
    public static let erasure = "gallra_erasure"
}
