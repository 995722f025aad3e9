import ArgumentParser
import Foundation
import GallraCore
import GallraDaemon
import GallraEngine
import GallraPolicy
import GallraPostgres
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Options shared by `run` and `plan`: which policies, at which instant.
struct RunSelection: ParsableArguments {
    @Option(name: .customLong("policy"), help: "Only this policy (repeatable). Default: every stored policy.")
    var policies: [String] = []

    @Option(
        help: ArgumentHelp(
            "Evaluate expiry at this instant instead of now, e.g. 2027-01-01T00:00:00Z (UTC unless an offset is given).",
            valueName: "timestamp"))
    var asOf: String?

    @OptionGroup var output: FormatOptions

    func validate() throws {
        if let asOf, TimeText.parseInstant(asOf) == nil {
            throw ValidationError(
                "--as-of \(asOf): not a timestamp; write it as ISO 8601, e.g. 2027-01-01T00:00:00Z or 2027-01-01")
        }
        for name in policies {
            if (try? PolicyName(name)) == nil { throw ValidationError("--policy \(name): not a policy name") }
        }
    }

    var instant: Date? { asOf.flatMap(TimeText.parseInstant) }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the active policies now: delete and anonymize what has expired, with an audit record.",
        discussion: """
            Without --once, runs as the service (what gallra.service starts): connects (retrying while the \
            database is down), migrates, and runs each active policy on its schedule (schedule.default when it \
            names none) and drafts as logged dry runs; a schedule missed while it was down runs once at start. \
            One gallra per database runs policies, others wait as standbys. SIGHUP re-reads the configuration and \
            policies, SIGUSR1 or `gallra trigger` runs now, SIGTERM stops after the batch in flight. It speaks \
            sd_notify (READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1) and logs to the journal.

            With --once, evaluates every active policy (or those named with --policy) at one instant and \
            processes the expiring subjects in batches: each batch is one transaction that acts on every data \
            point of its subjects and appends a block to the audit trail. A policy that would touch more \
            subjects than its limits allow is refused (exit 75) unless --allow-large is given. Only one live \
            run per database at a time. With throttle.replica_lag or throttle.replica_lag_bytes set, batches \
            wait while a streaming standby replays further behind (docs/scaling.md). --dry-run does what \
            `gallra plan` does. SIGINT (Ctrl-C) or SIGTERM stops the run: the batch in flight is rolled back, \
            the committed ones stay done and audited, and the report shows how far it got (exit 75); a second \
            signal stops at once.

            Exit status: 0 done; 65 a policy is invalid (the others ran); 75 a policy was refused by its \
            limits, batches were skipped, or due subjects were locked by another transaction (run again \
            later); 69 the database cannot be reached; 78 no audit key, or the schema needs `gallra migrate`.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var selection: RunSelection

    @Flag(help: "Run the due policies once and exit.")
    var once = false

    @Flag(help: "Show what would happen; change nothing.")
    var dryRun = false

    @Flag(help: "Override the policies' max_subjects_per_run and max_fraction limits for this run.")
    var allowLarge = false

    func validate() throws {
        guard once || dryRun else {
            if !selection.policies.isEmpty || selection.asOf != nil || allowLarge || selection.output.format != .text {
                throw ValidationError(
                    "--policy, --as-of, --allow-large and --format go with --once or --dry-run; the service "
                        + "(gallra run alone) runs every policy on its schedule")
            }
            return
        }
    }

    func run() async throws {
        guard once || dryRun else {
            try await reportingFailures { try await runService() }
            return
        }
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let key = dryRun ? nil : try context.auditKey()
            let connection = try await context.connectToCurrentSchema()
            if !dryRun {
                guard try await Engine.tryAcquireRunnerLock(on: connection) else {
                    await connection.close()
                    throw CommandFailure(
                        .temporaryFailure,
                        "another gallra is running policies on this database; try again when it has finished")
                }
                let abandoned = try await Engine.closeAbandonedRuns(on: connection)
                if abandoned > 0 {
                    context.logger.warning(
                        "\(abandoned) earlier run(s) had stopped without finishing (killed?); marked interrupted",
                        metadata: ["runs": "\(abandoned)"])
                }
            }
            let runnable = try await RunnablePolicies.load(
                on: connection, names: selection.policies, includeDrafts: dryRun)
            let limits = context.settings.replicaLag
            let throttle =
                !dryRun && limits.isEnabled
                ? ReplicaThrottle(limits: limits, source: PostgresReplicaLagSource(connection: connection)) : nil
            let options = RunOptions(
                mode: dryRun ? .dry : .live, asOf: selection.instant, allowLarge: allowLarge, trigger: "manual",
                gallraVersion: BuildInfo.version, throttle: throttle, connect: { try await context.connect() })
            let progress = ProgressLine(enabled: selection.output.format == .text && isatty(2) == 1)
            let engine = Engine(connection: connection, auditKey: key, logger: context.logger)
            let policies = runnable.policies
            let run = { @Sendable in try await engine.run(policies, options: options, progress: { progress.show($0) }) }
            // A dry run changes nothing: the signals' default action ends it.
            let report = try await dryRun ? run() : StopSignals.cancelling(logger: context.logger, run)
            progress.finish()
            await connection.close()
            try RunOutput.print(report, invalid: runnable.invalid, warnings: [:], format: selection.output.format)
            try RunOutput.exitStatus(report, invalid: runnable.invalid)
        }
    }
}

extension Run {
    /// `gallra run` as the long-running service.
    func runService() async throws {
        let context = try await CommandContext.start(global)
        let configuration = try Self.daemonConfiguration(context)
        let global = self.global
        let logger = context.logger
        try await Daemon.run(
            configuration: configuration,
            reloadConfiguration: {
                let settings = try await Settings.load(global)
                return try Self.daemonConfiguration(CommandContext(settings: settings, logger: logger))
            }, logger: context.logger)
    }

    static func daemonConfiguration(_ context: CommandContext) throws -> DaemonConfiguration {
        let settings = context.settings
        let schedule: Schedule
        do {
            schedule = try Schedule(parsing: settings.defaultSchedule)
        } catch {
            throw CommandFailure(.configuration, "schedule.default: \(error)")
        }
        return DaemonConfiguration(
            database: settings.database, password: settings.databasePassword, auditKey: try context.auditKey(),
            defaultSchedule: schedule, reconnect: Backoff(initial: .seconds(1), maximum: settings.retryMax),
            standbyRetry: settings.standbyRetry, gallraVersion: BuildInfo.version, logLevel: settings.logLevel,
            replicaLag: settings.replicaLag)
    }
}

struct Trigger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the running gallra service run policies now.",
        discussion: """
            Sends a notification (NOTIFY gallra_trigger) on the database; the service that runs the policies \
            there runs the named policies (default: every active policy, and drafts as dry runs) at once, \
            whatever their schedules. `systemctl kill -s USR1 gallra` does the same for every policy. \
            Follow the run with `journalctl -u gallra -f` or `gallra audit runs`.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("policy"), help: "Run this policy (repeatable). Default: every active policy.")
    var policies: [String] = []

    func validate() throws {
        for name in policies {
            if (try? PolicyName(name)) == nil { throw ValidationError("--policy \(name): not a policy name") }
        }
    }

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connect()
            let holder = try await Engine.runnerLockHolder(on: connection)
            try await connection.notify(
                NotificationChannel.trigger, payload: TriggerRequest(policies: policies).payload)
            await connection.close()
            let what = policies.isEmpty ? "every active policy" : policies.joined(separator: ", ")
            if holder == nil {
                StandardError.write(
                    "gallra: warning: no gallra service is running policies on this database now; the trigger "
                        + "(\(what)) is lost unless one starts listening\n")
            } else {
                Swift.print("triggered: \(what)")
            }
        }
    }
}

struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a run would do now (or at --as-of), changing nothing.",
        discussion: """
            A dry run in one READ ONLY transaction: for each policy (drafts included, marked), the subjects \
            expiring and exempted, whether the limits would refuse it, and per data point the rows that \
            would be deleted, anonymized or retained (shared with rows that do not expire). The numbers are \
            those a live run at the same instant does.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var selection: RunSelection

    @Option(help: "List up to N expiring subject keys per policy.")
    var showKeys: Int = 0

    func run() async throws {
        try await reportingFailures {
            let context = try await CommandContext.start(global)
            let connection = try await context.connectToCurrentSchema()
            let runnable = try await RunnablePolicies.load(
                on: connection, names: selection.policies, includeDrafts: true)
            let options = RunOptions(
                mode: .dry, asOf: selection.instant, trigger: "manual", showKeys: max(0, showKeys))
            let report = try await Engine(connection: connection, auditKey: nil, logger: context.logger).run(
                runnable.policies, options: options)
            await connection.close()
            try RunOutput.print(
                report, invalid: runnable.invalid, warnings: runnable.warnings, format: selection.output.format)
            if !runnable.invalid.isEmpty {
                throw CommandFailure(.dataError, "\(runnable.invalid.count) policy(ies) invalid; see above")
            }
        }
    }
}

/// A progress line on a terminal: `inactive-customers 1500/2959 subjects, 5200 rows/s, 00:12 left`.
final class ProgressLine: @unchecked Sendable {
    private let enabled: Bool
    private let lock = NSLock()

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ progress: RunProgress) {
        guard enabled else { return }
        var line = "\(progress.policy) \(progress.subjectsDone)/\(progress.subjectsTotal) subjects"
        if let reason = progress.pausedBy {
            line += ", paused: \(reason)"
        } else {
            line += String(format: ", %.0f rows/s", progress.rowsPerSecond)
        }
        if let left = progress.estimatedRemaining {
            let seconds = Int(left.components.seconds)
            line += String(format: ", %02d:%02d left", seconds / 60, seconds % 60)
        }
        lock.withLock { StandardError.write("\r\u{1B}[K" + line) }
    }

    func finish() {
        guard enabled else { return }
        lock.withLock { StandardError.write("\r\u{1B}[K") }
    }
}

/// How `run` and `plan` report.
enum RunOutput {
    static func print(
        _ report: RunReport, invalid: [(name: String, reason: String)], warnings: [String: [String]],
        format: OutputFormat
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
                    "  \(policy.expiring) subjects expiring, \(policy.exempted) exempted, "
                        + "\(policy.processed) \(dry ? "would be processed" : "processed") in \(policy.batches) "
                        + "batch\(policy.batches == 1 ? "" : "es")")
                if policy.throttledSeconds > 0 {
                    Swift.print(
                        "  batches paused \(String(format: "%.1f", policy.throttledSeconds)) s for replica lag")
                }
                if let refused = policy.refused { Swift.print("  REFUSED: \(refused)") }
                if let failure = policy.failure { Swift.print("  FAILED: \(failure)") }
                if policy.stillDue > 0 {
                    Swift.print(
                        "  \(policy.stillDue) subject\(policy.stillDue == 1 ? "" : "s") still due (in skipped batches "
                            + "or locked by another transaction): run again later")
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

    static func exitStatus(_ report: RunReport, invalid: [(name: String, reason: String)]) throws {
        if !invalid.isEmpty {
            throw CommandFailure(.dataError, "\(invalid.count) policy(ies) invalid and not run; see above")
        }
        switch report.outcome {
        case .done: return
        case .partial, .refused:
            throw CommandFailure(
                .temporaryFailure, "the run did what it could (\(report.outcome.rawValue)); see above")
        case .failed: throw CommandFailure(.software, "a policy failed; see above")
        case .interrupted: throw CommandFailure(.temporaryFailure, "the run was interrupted")
        }
    }
}

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
