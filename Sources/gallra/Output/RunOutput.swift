#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import GallraCore
import GallraEngine
import GallraPolicy

/// How `run` and `plan` report.
enum RunOutput {
    /// `stored`: how many policies are stored, when the run selected all of them; a run that found none to act on
    /// then says why in text.
    static func print(
        _ report: RunReport, invalid: [(name: String, reason: String)], warnings: [String: [String]],
        format: OutputFormat, stored: Int? = nil
    ) throws {
        switch format {
        case .json:
            try JSONOutput.print(
                RunJSON(
                    report: report, invalid: invalid.map { RunJSON.Invalid(policy: $0.name, reason: $0.reason) },
                    warnings: warnings))
        case .text:
            let dry = report.mode == .dry
            Swift.print(
                dry
                    ? "plan as of \(report.asOf) (dry run: nothing was changed)"
                    : "run \(report.runID) as of \(report.asOf): \(report.outcome.rawValue)")
            if let stored, report.policies.isEmpty, invalid.isEmpty {
                Swift.print(
                    stored == 0
                        ? "no policies stored yet, so nothing to \(dry ? "plan" : "run"); store some with gallra "
                            + "policy apply FILE"
                        : "none of the \(stored) stored polic\(stored == 1 ? "y" : "ies") is "
                            + "\(dry ? "active or a draft" : "active"), so nothing to \(dry ? "plan" : "run"); gallra "
                            + "policy list shows their states")
            }
            for policy in report.policies {
                Swift.print("")
                var title = "\(policy.name) v\(policy.version)"
                if policy.state == .draft { title += " (draft: dry runs only)" }
                Swift.print(title)
                if let skipped = policy.skipped {
                    Swift.print("  skipped: \(skipped)")
                    continue
                }
                Swift.print(
                    "  \(policy.expiring) subjects expiring, \(policy.exempted) exempted, \(policy.held ?? 0) held, "
                        + "\(policy.processed) \(dry ? "would be processed" : "processed") in \(policy.batches) "
                        + "batch\(policy.batches == 1 ? "" : "es")")
                if policy.throttledSeconds > 0 {
                    Swift.print(
                        "  batches paused \(NumberText.fixed(policy.throttledSeconds, digits: 1)) s for replica lag")
                }
                if let refused = policy.refused { Swift.print("  REFUSED: \(refused)") }
                if let failure = policy.failure { Swift.print("  FAILED: \(failure)") }
                if policy.stillDue > 0 {
                    Swift.print(
                        "  \(policy.stillDue) subject\(policy.stillDue == 1 ? "" : "s") still due (left, in skipped "
                            + "batches, or locked by another transaction): run again later")
                }
                for subject in policy.leftSubjects ?? [] {
                    var line = "  subject \(subject.key ?? subject.digest) left: \(subject.reason)"
                    if let table = subject.table { line += " (\(table))" }
                    if let state = subject.sqlState { line += ", SQLSTATE \(state)" }
                    if let message = subject.message { line += ": \(message)" }
                    Swift.print(line)
                }
                for batch in policy.skippedBatches {
                    Swift.print(
                        "  batch \(batch.batch) skipped after \(batch.attempts) attempts: \(batch.error)")
                }
                if !policy.tables.isEmpty {
                    let table = TextTable(header: [
                        "  TABLE", dry ? "WOULD DELETE" : "DELETED",
                        dry ? "WOULD ANONYMIZE" : "ANONYMIZED", "RETAINED",
                    ])
                    for counts in policy.tables {
                        table.add([
                            "  " + counts.table, String(counts.deleted), String(counts.anonymized),
                            String(counts.retained),
                        ])
                    }
                    Swift.print(table.render())
                }
                if let events = policy.consentEvents {
                    Swift.print(
                        "  \(events) consent event\(events == 1 ? "" : "s") \(dry ? "would be " : "")removed from "
                            + "gallra's registry")
                }
                if let pruned = policy.pruned {
                    Swift.print(
                        "  \(pruned) entr\(pruned == 1 ? "y" : "ies") of gallra.processed and processed_row pruned "
                            + "(their rows are gone)")
                }
                for warning in warnings[policy.name] ?? [] { Swift.print("  warning: \(warning)") }
                if let keys = policy.keys, !keys.isEmpty {
                    Swift.print("  first keys: \(keys.joined(separator: ", "))")
                }
            }
            for entry in invalid {
                Swift.print("\n\(entry.name): INVALID, not run: \(entry.reason)")
            }
            if let head = report.auditHead {
                Swift.print("\naudit head: block \(head.sequence) \(head.hash)")
            }
        }
    }

    /// `lackingPrivileges`: the invalid policies that only a GRANT keeps from running.
    static func exitStatus(
        _ report: RunReport, invalid: [(name: String, reason: String)], lackingPrivileges: Set<String> = []
    ) throws {
        if !invalid.isEmpty {
            if invalid.allSatisfy({ lackingPrivileges.contains($0.name) }) {
                throw CommandFailure(
                    .noPermission,
                    "\(invalid.count) policy(ies) not run: the role lacks privileges they need; run the GRANT shown above, then run again"
                )
            }
            throw CommandFailure(.dataError, "\(invalid.count) policy(ies) invalid and not run; see above")
        }
        switch report.outcome {
        case .done: return
        case .partial, .refused:
            throw CommandFailure(
                .temporaryFailure, "the run did what it could (\(report.outcome.rawValue)); see above")
        case .failed:
            // A routine database error (a privilege, a timeout) ends with its own status and what to do about it.
            let failures = report.policies.compactMap(\.failure)
            guard let first = failures.first(where: { $0.exitStatus != .software }),
                failures.allSatisfy({ $0.exitStatus == first.exitStatus }),
                let advice = CommandFailure.advice(first.exitStatus, sqlState: first.sqlState)
            else {
                throw CommandFailure(.software, "a policy failed; see above")
            }
            throw CommandFailure(first.exitStatus, "a policy failed: \(first)\n\(advice)")
        case .interrupted: throw CommandFailure(.temporaryFailure, "the run was interrupted")
        }
    }
}

/// `gallra run --once` and `gallra plan` with `--format json`.
struct RunJSON: Encodable {
    struct Invalid: Encodable {
        var policy: String
        var reason: String
    }

    var report: RunReport
    var invalid: [Invalid]
    /// The validator's warnings per policy (plans only).
    var warnings: [String: [String]]
}
